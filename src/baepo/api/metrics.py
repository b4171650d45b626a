"""Service metrics over HTTP: `GET /metrics` for Prometheus, and
`GET /api/v1/services/{name}/metrics` (one service) and `GET /api/v1/metrics` (all the
caller's) for people (the CLI, the console).

Both are reads of services, with the rights of describing one: a caller sees the services it
reaches (`rights.service_reach`: its own, an admin's all, a token's limited list), another's
service answers `404 SERVICE_NOT_FOUND` as if it did not exist. Prometheus signs in like any
client (basic auth or a bearer API token; a token limited to services scrapes just those).

`/metrics` (text format 0.0.4, made with `prometheus-client`, imported on the first scrape:
it stays out of an idle server's memory):

    baepo_service_requests_total{service}               counter, since Baepo started
    baepo_service_responses_total{service,code}         counter, code = 2xx | 4xx | 5xx
    baepo_service_requests_in_flight{service}           gauge, at the last reading (1 s)
    baepo_service_requests_queued{service}              gauge, waiting for a free instance
    baepo_service_instances{service}                    gauge, instances serving
    baepo_service_request_duration_seconds{service,quantile}
                                                        gauge, p50/p95/p99 of the last
                                                        complete minute (within 4.4 %)
    baepo_instance_cpu_cores{service,instance}          gauge, 0.5 = half a core busy
    baepo_instance_memory_bytes{service,instance}       gauge
    baepo_instance_memory_limit_bytes{service,instance} gauge, when the instance has one
"""

from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from baepo.api.errors import ApiError
from baepo.api.security import Identity
from baepo.auth.rights import ServiceAction, may_on_services, service_reach
from baepo.control import Caller, InvalidLogQuery, ServiceNotFound, Services, parse_since
from baepo.metrics import MINUTES, SERIES, MetricsStore, Snapshot

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


class MetricsSeries(BaseModel):
    """A service's recent metrics, one point a minute, oldest first."""

    service: str
    window: str = Field(description="as asked, e.g. 1h")
    step_seconds: int = Field(description="between two points: 60")
    minutes: list[datetime] = Field(
        description="each point's minute (UTC); the last is the minute under way"
    )
    series: dict[str, list[float | None]] = Field(
        description="one list per series, aligned with `minutes`: "
        + ", ".join(SERIES)
        + ". null where nothing was measured (the router or the engine could not be read)"
    )


def window_minutes(window: str) -> int:
    """`30m`, `1h`, `24h` as a count of minutes (1 to a day); `ApiError` otherwise."""
    try:
        span = parse_since(window)
    except InvalidLogQuery:
        span = None
    if not isinstance(span, timedelta) or span < timedelta(minutes=1):
        raise ApiError(
            400, "INVALID_REQUEST", f"window {window[:40]!r} is no duration (30m, 1h, 24h)"
        )
    if span > timedelta(minutes=MINUTES):
        raise ApiError(400, "INVALID_REQUEST", "window is at most 24h: Baepo keeps a day")
    return int(span.total_seconds() // 60)


def metrics_router(
    store: MetricsStore, services: Services, who: Callable[..., Awaitable[Identity]]
) -> APIRouter:
    router = APIRouter(tags=["metrics"])
    Me = Annotated[Identity, Depends(who)]

    def reached(me: Identity) -> Callable[[], list[str]]:
        """The names of the services `me` may read (403 for a token that may not read any)."""
        if not may_on_services(me.rights, ServiceAction.READ):
            raise ApiError(403, "FORBIDDEN", f"this API token is limited to {me.limits()}")
        reach = service_reach(me.rights)
        caller = Caller(me.name, reach.owners, reach.services)
        return lambda: services.names(caller=caller)

    @router.get(
        "/metrics",
        response_class=Response,
        responses={
            200: {
                "description": "Prometheus text format 0.0.4: the caller's services",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    )
    async def prometheus(me: Me) -> Response:
        """Every service the caller may read, in Prometheus' text format."""
        names = await run_in_threadpool(reached(me))
        text = await run_in_threadpool(exposition, store.snapshot(set(names)))
        return Response(text, media_type=PROMETHEUS_TEXT)

    @router.get("/api/v1/services/{name}/metrics", response_model=MetricsSeries)
    async def service_metrics(
        name: str,
        me: Me,
        window: Annotated[
            str,
            Query(description="how far back: 30m, 1h, 6h, 24h (at most)", max_length=40),
        ] = "1h",
    ) -> MetricsSeries:
        """The service's recent metrics, one point a minute (`series`, aligned with `minutes`):

        - `requests`, `http_2xx`, `http_4xx`, `http_5xx`: counted in the minute;
        - `p50_ms`, `p95_ms`, `p99_ms`: request latency in ms (within 4.4 %), from the
          first byte of the request to the last of the response, queueing included;
        - `in_flight`, `queued`: mean over the minute; `instances`: serving at its end;
        - `cpu_percent` (100 = one core), `memory_bytes`: mean per running instance.

        The last point is the minute under way. A service with no traffic yet (or just
        created) has few points or none."""
        minutes = window_minutes(window)
        names = await run_in_threadpool(reached(me))
        if name not in names:
            raise ServiceNotFound(f"no service named {name!r}")
        return series_of(store, name, window, minutes)

    @router.get("/api/v1/metrics", response_model=list[MetricsSeries])
    async def all_metrics(
        me: Me,
        window: Annotated[
            str,
            Query(description="how far back: 5m, 1h, 24h (at most)", max_length=40),
        ] = "5m",
    ) -> list[MetricsSeries]:
        """The recent metrics of every service the caller may read, by name: one call for a
        list of services (the console's dashboard) instead of one each."""
        minutes = window_minutes(window)
        names = await run_in_threadpool(reached(me))
        return [series_of(store, name, window, minutes) for name in sorted(names)]

    return router


def series_of(store: MetricsStore, name: str, window: str, minutes: int) -> MetricsSeries:
    found = store.series(name, minutes)
    return MetricsSeries(
        service=name,
        window=window,
        step_seconds=60,
        minutes=found.minutes if found else [],
        series=found.values if found else {key: [] for key in SERIES},
    )


def exposition(snapshots: list[Snapshot]) -> bytes:
    """The Prometheus text of `snapshots` (prometheus-client imported here, when first asked)."""
    from prometheus_client.exposition import generate_latest
    from prometheus_client.registry import CollectorRegistry

    class Collector:
        def collect(self) -> Iterator[Any]:
            yield from _families(snapshots)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector())
    return generate_latest(registry)


def _families(snapshots: list[Snapshot]) -> Iterator[Any]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    service = ["service"]
    requests = CounterMetricFamily(
        "baepo_service_requests", "Requests the service took since Baepo started", labels=service
    )
    responses = CounterMetricFamily(
        "baepo_service_responses",
        "Responses by class since Baepo started",
        labels=["service", "code"],
    )
    in_flight = GaugeMetricFamily(
        "baepo_service_requests_in_flight", "Requests being served", labels=service
    )
    queued = GaugeMetricFamily(
        "baepo_service_requests_queued", "Requests waiting for a free instance", labels=service
    )
    instances = GaugeMetricFamily("baepo_service_instances", "Instances serving", labels=service)
    latency = GaugeMetricFamily(
        "baepo_service_request_duration_seconds",
        "Request latency quantiles over the last complete minute (within 4.4 %)",
        labels=["service", "quantile"],
    )
    instance = ["service", "instance"]
    cpu = GaugeMetricFamily("baepo_instance_cpu_cores", "CPU in use, in cores", labels=instance)
    memory = GaugeMetricFamily(
        "baepo_instance_memory_bytes", "Memory in use, page cache excluded", labels=instance
    )
    limit = GaugeMetricFamily(
        "baepo_instance_memory_limit_bytes", "The instance's memory limit", labels=instance
    )
    for s in snapshots:
        requests.add_metric([s.service], s.requests_total)
        for code, count in s.responses_total.items():
            responses.add_metric([s.service, code], count)
        in_flight.add_metric([s.service], s.in_flight)
        queued.add_metric([s.service], s.queued)
        instances.add_metric([s.service], s.instances)
        for q, ms in s.latency_ms.items():
            latency.add_metric([s.service, f"{q:g}"], ms / 1000)
        for u in s.usage:
            if u.cpu_percent is not None:
                cpu.add_metric([s.service, u.instance], u.cpu_percent / 100)
            memory.add_metric([s.service, u.instance], u.memory_bytes)
            if u.memory_limit_bytes is not None:
                limit.add_metric([s.service, u.instance], u.memory_limit_bytes)
    yield from (requests, responses, in_flight, queued, instances, latency, cpu, memory, limit)
