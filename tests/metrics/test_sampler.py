"""The sampler: the router's counters become arrivals (resets and new services included), every
service is observed each reading, an outage is logged once each way, and a hung read neither
stalls the loop nor piles up threads."""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from collections.abc import Mapping

import pytest

from baepo.clock import FakeClock
from baepo.metrics import Sampler
from baepo.router import HAProxyUnavailable, ServerState, ServerStats, ServiceStats

pytestmark = pytest.mark.anyio


def stats(
    total: int, in_flight: int = 0, queued: int = 0, ok: int | None = None, servers: int = 1
) -> ServiceStats:
    return ServiceStats(
        in_flight=in_flight,
        queued=queued,
        servers=[
            ServerStats(f"s{i}", f"10.0.0.{i}:80", ServerState.READY, 0, 0, 0)
            for i in range(servers)
        ]
        + [ServerStats("old", "10.0.0.99:80", ServerState.DRAIN, 0, 0, 0)],
        total=total,
        http_2xx=total if ok is None else ok,
    )


class Router:
    """A scripted `load()`: the next reading, or the error to raise."""

    def __init__(self) -> None:
        self.readings: list[Mapping[str, ServiceStats] | Exception] = []
        self.calls = 0

    def load(self) -> Mapping[str, ServiceStats]:
        self.calls += 1
        reading = self.readings.pop(0)
        if isinstance(reading, Exception):
            raise reading
        return reading


class Observed:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int, int]] = []

    def __call__(self, service: str, in_flight: int, queued: int, arrived: int) -> None:
        self.calls.append((service, in_flight, queued, arrived))


def sampler(router: Router, observed: Observed, clock: FakeClock | None = None) -> Sampler:
    return Sampler(router.load, clock or FakeClock(), observed, read_timeout_s=0.2)


async def test_arrivals_are_what_the_counter_grew_and_the_first_reading_is_a_baseline() -> None:
    router, observed = Router(), Observed()
    s = sampler(router, observed)
    router.readings = [
        {"app": stats(1_000_000, in_flight=3)},  # an adopted HAProxy counted before Baepo
        {"app": stats(1_000_040, in_flight=5, queued=2)},
    ]
    await s.sample()
    samples = await s.sample()
    assert observed.calls == [("app", 3, 0, 0), ("app", 5, 2, 40)]
    assert samples is not None
    assert (samples[0].arrived, samples[0].http_2xx, samples[0].instances) == (40, 40, 1)


async def test_a_counter_that_goes_down_was_reset_by_a_reload() -> None:
    router, observed = Router(), Observed()
    s = sampler(router, observed)
    router.readings = [{"app": stats(500)}, {"app": stats(7)}, {"app": stats(9)}]
    for _ in range(3):
        await s.sample()
    assert [call[3] for call in observed.calls] == [0, 7, 2]


async def test_a_service_routed_later_counts_from_zero_and_a_removed_one_is_forgotten() -> None:
    router, observed = Router(), Observed()
    s = sampler(router, observed)
    router.readings = [
        {"app": stats(10)},
        {"app": stats(10), "new": stats(4, servers=2)},
        {"new": stats(6)},
        {"new": stats(6), "app": stats(3)},  # deleted and created again: a new backend
    ]
    for _ in range(4):
        await s.sample()
    assert observed.calls == [
        ("app", 0, 0, 0),
        ("app", 0, 0, 0),
        ("new", 0, 0, 4),
        ("new", 0, 0, 2),
        ("app", 0, 0, 3),
        ("new", 0, 0, 0),
    ]


async def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    router, observed = Router(), Observed()
    s = sampler(router, observed)
    router.readings = [
        {"app": stats(1)},
        *[HAProxyUnavailable("cannot reach HAProxy's stats socket")] * 20,
        {"app": stats(5)},
        {"app": stats(6)},
    ]
    with caplog.at_level(logging.INFO, logger="baepo.metrics"):
        for _ in range(23):
            await s.sample()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert "cannot read the router's load: cannot reach HAProxy's stats socket;" in lines[0]
    assert lines[1] == "the router's load can be read again"
    assert [call[3] for call in observed.calls] == [0, 4, 1]  # nothing observed meanwhile
    assert s.outage is None


async def test_a_hung_read_is_an_outage_and_is_not_started_again_while_it_hangs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = threading.Event()
    calls = 0

    def load() -> Mapping[str, ServiceStats]:
        nonlocal calls
        calls += 1
        release.wait(10)
        return {"app": stats(calls)}

    observed = Observed()
    s = Sampler(load, FakeClock(), observed, read_timeout_s=0.05)
    with caplog.at_level(logging.WARNING, logger="baepo.metrics"):
        assert await s.sample() is None
        assert await s.sample() is None
    assert calls == 1
    assert s.outage == "no answer in 0.05 s"
    assert len(caplog.records) == 1
    release.set()
    assert await s.sample() is not None  # the hung read's answer, once it came
    assert await s.sample() is not None
    assert calls == 2
    assert s.outage is None


async def test_run_reads_once_a_second_on_the_clock_until_cancelled() -> None:
    clock = FakeClock()
    times: list[float] = []

    def load() -> Mapping[str, ServiceStats]:
        times.append(clock.monotonic())
        return {"app": stats(len(times))}

    observed = Observed()
    task = asyncio.create_task(Sampler(load, clock, observed).run())
    try:
        async with asyncio.timeout(10):
            while len(observed.calls) < 5:
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
    gaps = {round(b - a, 6) for a, b in itertools.pairwise(times)}
    assert gaps == {1.0}
    assert [call[3] for call in observed.calls[:5]] == [0, 1, 1, 1, 1]


async def test_an_observation_that_outgrew_its_instances_wakes_the_reconciler() -> None:
    router = Router()
    router.readings = [{"app": stats(0)}, {"app": stats(5)}, {"app": stats(9, in_flight=40)}]
    pressed = {"app": False}
    woken: list[int] = []

    def observe(service: str, in_flight: int, queued: int, arrived: int) -> bool:
        return pressed[service] or in_flight > 30

    sampler = Sampler(router.load, FakeClock(), observe, wake=lambda: woken.append(1))
    await sampler.sample()
    await sampler.sample()
    assert woken == []
    await sampler.sample()
    assert woken == [1]  # once per reading, however many services outgrew theirs
