"""The metrics Baepo keeps itself: per service, one point a minute for the last 24 hours, in
memory (no external system; a restart starts them afresh).

What a point holds (`SERIES`, in this order):

    requests, http_2xx, http_4xx, http_5xx   counted in the minute (router stats, per second)
    p50_ms, p95_ms, p99_ms                   request latency (HAProxy's request log; within
                                             4.4 %, see latency.py; NaN without requests)
    in_flight, queued                        mean of the minute's one-per-second readings
    instances                                instances serving at the minute's last reading
    cpu_percent, memory_bytes                mean per running instance (engine, every 10 s)

A value not observed in a minute (the router or the engine could not be read, or Baepo was
not running) is NaN: a gap, never a zero.

Memory: each series is a float32 array that grows a point a minute up to 1,440, then wraps
around (a ring): 12 x 1,440 x 4 = 69,120 bytes per service after a day, plus the minute being
filled (its latency histogram: at most a few hundred bytes) and the last readings for
`GET /metrics` — about 70 KiB per service, 7 MiB for 100 services. A service no longer routed
(deleted) is forgotten at the next reading of the router.

All methods are safe from any thread: the sampler records from the event loop, the request
log from its own thread, the API reads from worker threads.
"""

from __future__ import annotations

import math
import threading
from array import array
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from baepo.clock import Clock
from baepo.metrics.latency import LatencyHistogram
from baepo.metrics.sampler import Sample
from baepo.metrics.usage import InstanceUsage
from baepo.router import AccessRecord

SERIES = (
    "requests",
    "http_2xx",
    "http_4xx",
    "http_5xx",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "in_flight",
    "queued",
    "instances",
    "cpu_percent",
    "memory_bytes",
)
MINUTES = 24 * 60
QUANTILES = (0.5, 0.95, 0.99)
BUSY_S = 60.0
NAN = math.nan


def _mean(total: float, count: int) -> float:
    return total / count if count else NAN


class _Minute:
    """The minute being filled."""

    __slots__ = (
        "cpu",
        "cpu_n",
        "in_flight",
        "instances",
        "latency",
        "memory",
        "memory_n",
        "minute",
        "queued",
        "responses",
        "samples",
    )

    def __init__(self, minute: int) -> None:
        self.minute = minute
        self.responses = [0, 0, 0, 0]  # requests, 2xx, 4xx, 5xx
        self.in_flight = self.queued = 0.0
        self.samples = 0
        self.instances = NAN
        self.cpu = self.memory = 0.0
        self.cpu_n = self.memory_n = 0
        self.latency = LatencyHistogram()

    def quantiles(self) -> tuple[float, float, float]:
        p50, p95, p99 = (self.latency.quantile(q) for q in QUANTILES)
        return (
            NAN if p50 is None else p50,
            NAN if p95 is None else p95,
            NAN if p99 is None else p99,
        )

    def values(self) -> tuple[float, ...]:
        counted = self.samples > 0
        return (
            *(float(n) if counted else NAN for n in self.responses),
            *self.quantiles(),
            _mean(self.in_flight, self.samples),
            _mean(self.queued, self.samples),
            self.instances,
            _mean(self.cpu, self.cpu_n),
            _mean(self.memory, self.memory_n),
        )


@dataclass
class _Service:
    open: _Minute
    first: int | None = None  # the minute of the ring's first slot
    last: int | None = None  # the last minute closed
    columns: list[array[float]] = field(default_factory=lambda: [array("f") for _ in SERIES])
    totals: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    sample: Sample | None = None
    usage: list[InstanceUsage] = field(default_factory=list)
    last_quantiles: tuple[float, float, float] = (NAN, NAN, NAN)
    busy_at: float = -math.inf  # monotonic: the last reading with requests arriving or in flight

    def close(self) -> None:
        """Put the open minute in the ring (after NaNs for the minutes nobody saw)."""
        minute, values = self.open.minute, self.open.values()
        self.last_quantiles = self.open.quantiles()
        if self.last is None or self.first is None or minute - self.last > MINUTES:
            self.first, self.last = minute, minute - 1
            self.columns = [array("f") for _ in SERIES]
        for gap in range(self.last + 1, minute):
            self._put(gap, (NAN,) * len(SERIES))
        self._put(minute, values)
        self.last = minute

    def _put(self, minute: int, values: Iterable[float]) -> None:
        assert self.first is not None
        slot = (minute - self.first) % MINUTES
        for column, value in zip(self.columns, values, strict=True):
            if slot == len(column):
                column.append(value)
            else:
                column[slot] = value

    def point(self, minute: int) -> tuple[float, ...] | None:
        """A closed minute's values (NaN for one not seen since); None before the first."""
        if self.first is None or self.last is None or minute < self.first:
            return None
        if minute > self.last:
            return (NAN,) * len(SERIES)  # between the last closed minute and the open one
        if self.last - minute >= MINUTES:
            return None
        slot = (minute - self.first) % MINUTES
        return tuple(column[slot] for column in self.columns)


@dataclass(frozen=True)
class Series:
    """A service's points, one a minute, oldest first; the last is the minute under way."""

    service: str
    minutes: list[datetime]
    values: dict[str, list[float | None]]  # by SERIES name; None where nothing was seen


@dataclass(frozen=True)
class Snapshot:
    """A service now, for `GET /metrics`."""

    service: str
    requests_total: int  # since Baepo started
    responses_total: dict[str, int]  # "2xx", "4xx", "5xx"
    in_flight: int
    queued: int
    instances: int
    latency_ms: dict[float, float]  # quantile → ms, over the last complete minute
    usage: list[InstanceUsage]


class MetricsStore:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._services: dict[str, _Service] = {}

    def _minute(self) -> int:
        return int(self._clock.now().timestamp() // 60)

    def _current(self, name: str, minute: int) -> _Service | None:
        service = self._services.get(name)
        if service is not None and service.open.minute < minute:
            service.close()
            service.open = _Minute(minute)
        return service

    # -- what the readers record ---------------------------------------------------------

    def record_samples(self, samples: list[Sample]) -> None:
        """One reading of the router: every routed service (the others are forgotten)."""
        minute = self._minute()
        now = self._clock.monotonic()
        with self._lock:
            for gone in set(self._services) - {s.service for s in samples}:
                del self._services[gone]
            for s in samples:
                service = self._current(s.service, minute)
                if service is None:
                    service = self._services[s.service] = _Service(_Minute(minute))
                m = service.open
                for i, n in enumerate((s.arrived, s.http_2xx, s.http_4xx, s.http_5xx)):
                    m.responses[i] += n
                    service.totals[i] += n
                m.in_flight += s.in_flight
                m.queued += s.queued
                m.samples += 1
                m.instances = s.instances
                service.sample = s
                if s.arrived or s.in_flight or s.queued:
                    service.busy_at = now

    def record_usage(self, usage: list[InstanceUsage]) -> None:
        """One reading of the engine: every running instance's CPU and memory."""
        minute = self._minute()
        by_service: dict[str, list[InstanceUsage]] = {}
        for u in usage:
            by_service.setdefault(u.service, []).append(u)
        with self._lock:
            for name, service in list(self._services.items()):
                service.usage = by_service.get(name, [])
                if not service.usage:
                    continue
                m = self._current(name, minute)
                assert m is not None
                for u in service.usage:
                    m.open.memory += u.memory_bytes
                    m.open.memory_n += 1
                    if u.cpu_percent is not None:
                        m.open.cpu += u.cpu_percent
                        m.open.cpu_n += 1

    def record_request(self, record: AccessRecord) -> None:
        """One request, from HAProxy's request log. Its service is routed (HAProxy has its
        backend) even if the router's stats have not shown it yet: a new service's first
        requests count."""
        minute = self._minute()
        with self._lock:
            service = self._current(record.service, minute)
            if service is None:
                service = self._services[record.service] = _Service(_Minute(minute))
            service.open.latency.add(record.active_ms)

    def busy(self, name: str, within_s: float = BUSY_S) -> bool:
        """Whether the service took requests (or had some in flight) in the last `within_s`."""
        with self._lock:
            service = self._services.get(name)
            return service is not None and self._clock.monotonic() - service.busy_at < within_s

    # -- what people read ------------------------------------------------------------------

    def services(self) -> list[str]:
        with self._lock:
            return sorted(self._services)

    def series(self, name: str, minutes: int) -> Series | None:
        """The last `minutes` points (at most a day's), the minute under way last; None for a
        service with no metrics (unknown, or not routed yet)."""
        minutes = max(1, min(minutes, MINUTES))
        now = self._minute()
        with self._lock:
            service = self._current(name, now)
            if service is None:
                return None
            span = range(now - minutes + 1, now + 1)
            points = [service.point(m) for m in span[:-1]]
            points.append(service.open.values())
            start = service.first if service.first is not None else service.open.minute
        kept = [(m, p) for m, p in zip(span, points, strict=True) if m >= start and p is not None]
        return Series(
            service=name,
            minutes=[datetime.fromtimestamp(m * 60, UTC) for m, _ in kept],
            values={
                key: [None if math.isnan(p[i]) else _tidy(p[i]) for _, p in kept]
                for i, key in enumerate(SERIES)
            },
        )

    def snapshot(self, names: Collection[str] | None = None) -> list[Snapshot]:
        """Every service's figures now (of `names` only, when given)."""
        now = self._minute()
        found = []
        with self._lock:
            for name in sorted(self._services):
                if names is not None and name not in names:
                    continue
                service = self._current(name, now)
                assert service is not None
                s = service.sample
                found.append(
                    Snapshot(
                        service=name,
                        requests_total=service.totals[0],
                        responses_total=dict(
                            zip(("2xx", "4xx", "5xx"), service.totals[1:], strict=True)
                        ),
                        in_flight=s.in_flight if s else 0,
                        queued=s.queued if s else 0,
                        instances=s.instances if s else 0,
                        latency_ms={
                            q: v
                            for q, v in zip(QUANTILES, service.last_quantiles, strict=True)
                            if not math.isnan(v)
                        },
                        usage=list(service.usage),
                    )
                )
        return found


def _tidy(value: float) -> float:
    """A float32 read back, without its binary noise (12.300000190734863 → 12.3)."""
    return float(f"{value:.7g}")
