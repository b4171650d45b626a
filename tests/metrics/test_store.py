"""The metrics kept for a day: one point a minute per service, counters summed, gauges
averaged, latencies as quantiles, gaps as gaps, a ring of 24 h, deleted services forgotten."""

from __future__ import annotations

import math

from baepo.clock import FakeClock
from baepo.metrics import MINUTES, InstanceUsage, MetricsStore, Sample
from baepo.router import AccessRecord


def sample(service: str = "app", arrived: int = 0, in_flight: int = 0, **kw: int) -> Sample:
    return Sample(
        service=service,
        in_flight=in_flight,
        queued=kw.get("queued", 0),
        arrived=arrived,
        http_2xx=kw.get("ok", arrived),
        http_4xx=kw.get("client_errors", 0),
        http_5xx=kw.get("server_errors", 0),
        instances=kw.get("instances", 1),
    )


def test_a_minute_sums_counters_averages_gauges_and_summarizes_latency() -> None:
    clock = FakeClock()
    store = MetricsStore(clock)
    for second in range(60):
        store.record_samples([sample(arrived=2, in_flight=second % 2 * 4, instances=2)])
        store.record_request(AccessRecord("app", 200, 9, 10))
        store.record_request(AccessRecord("app", 200, 9, 100 if second < 3 else 10))
        clock.advance(1)
    store.record_usage(
        [
            InstanceUsage("app", "i1", 30.0, 100 << 20, None),
            InstanceUsage("app", "i2", None, 200 << 20, None),
            InstanceUsage("gone", "x", 50.0, 1, None),
        ]
    )
    series = store.series("app", 60)
    assert series is not None
    assert len(series.minutes) == 2  # the minute done, and the one under way
    done = {key: values[0] for key, values in series.values.items()}
    assert done["requests"] == 120 and done["http_2xx"] == 120 and done["http_5xx"] == 0
    assert done["in_flight"] == 2.0 and done["instances"] == 2
    assert done["p50_ms"] is not None and abs(done["p50_ms"] - 10) <= 0.5
    assert done["p99_ms"] is not None and 95 <= done["p99_ms"] <= 105
    assert done["cpu_percent"] is None  # the usage came in the next minute
    now = {key: values[-1] for key, values in series.values.items()}
    assert now["cpu_percent"] == 30.0 and now["memory_bytes"] == 150 << 20
    assert now["requests"] is None and now["p50_ms"] is None  # nothing sampled yet
    assert series.minutes[1].timestamp() - series.minutes[0].timestamp() == 60


def test_minutes_nobody_saw_are_gaps_and_the_ring_keeps_a_day() -> None:
    clock = FakeClock()
    store = MetricsStore(clock)
    store.record_samples([sample(arrived=1)])
    clock.advance(5 * 60)  # the router could not be read for 5 minutes
    store.record_samples([sample(arrived=3)])
    series = store.series("app", 10)
    assert series is not None
    assert series.values["requests"] == [1, None, None, None, None, 3]
    for _ in range(MINUTES + 30):
        clock.advance(60)
        store.record_samples([sample(arrived=7)])
    day = store.series("app", 10 * MINUTES)
    assert day is not None
    assert len(day.minutes) == MINUTES
    assert set(day.values["requests"]) == {7}
    assert all(not math.isnan(v) for v in day.values["requests"] if v is not None)


def test_a_service_no_longer_routed_is_forgotten() -> None:
    store = MetricsStore(FakeClock())
    store.record_samples([sample("app"), sample("old")])
    store.record_usage([InstanceUsage("starting", "i", None, 1, None)])  # not routed yet
    assert store.services() == ["app", "old"]
    store.record_request(AccessRecord("new", 200, 1, 1))  # routed since the last reading
    assert store.services() == ["app", "new", "old"]
    store.record_samples([sample("app")])
    assert store.services() == ["app"]
    assert store.series("old", 60) is None


def test_the_snapshot_counts_since_start_and_gives_the_last_minutes_latency() -> None:
    clock = FakeClock()
    store = MetricsStore(clock)
    store.record_samples([sample(arrived=5, client_errors=1, ok=4, in_flight=3, queued=2)])
    store.record_request(AccessRecord("app", 200, 40, 42))
    store.record_usage([InstanceUsage("app", "i1", 12.5, 1 << 20, 2 << 20)])
    clock.advance(60)
    store.record_samples([sample(arrived=1, in_flight=1), sample("other")])
    (app,) = store.snapshot({"app"})
    assert app.requests_total == 6
    assert app.responses_total == {"2xx": 5, "4xx": 1, "5xx": 0}
    assert (app.in_flight, app.queued, app.instances) == (1, 0, 1)
    assert set(app.latency_ms) == {0.5, 0.95, 0.99}
    assert abs(app.latency_ms[0.5] - 42) <= 2
    assert app.usage == [InstanceUsage("app", "i1", 12.5, 1 << 20, 2 << 20)]
    assert [s.service for s in store.snapshot()] == ["app", "other"]


def test_a_service_is_busy_for_a_minute_after_requests_came_or_were_in_flight() -> None:
    clock = FakeClock()
    store = MetricsStore(clock)
    store.record_samples([sample("idle"), sample("web", arrived=1)])
    assert store.busy("web") and not store.busy("idle") and not store.busy("unknown")
    clock.advance(59)
    store.record_samples([sample("idle", in_flight=1), sample("web")])  # a long request
    assert store.busy("web") and store.busy("idle")
    clock.advance(2)
    assert not store.busy("web") and store.busy("idle")
