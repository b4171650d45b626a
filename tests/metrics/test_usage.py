"""The engine's figures per instance: CPU % between two readings, memory as the engine says,
running instances of this Baepo only, and an engine outage as no figures (logged once)."""

from __future__ import annotations

import builtins
import logging
from collections.abc import Mapping

import pytest

from baepo.clock import FakeClock
from baepo.metrics import InstanceUsage, UsageReader
from baepo.runtime import LABEL_INSTANCE, LABEL_SERVICE, ContainerSpec, Instance, Usage
from tests.fakes.engine import MemoryEngine, baepo_test_images

pytestmark = pytest.mark.anyio

MINE = {"baepo.installation": "mine"}


def start(engine: MemoryEngine, service: str, instance: str, **labels: str) -> str:
    spec = ContainerSpec(
        image="baepo-test/hello:1",
        port=8080,
        memory_mb=128,
        labels={**MINE, LABEL_SERVICE: service, LABEL_INSTANCE: instance, **labels},
    )
    return engine.run(spec).id


async def test_cpu_is_the_time_used_between_readings_and_memory_is_as_read() -> None:
    clock, engine = FakeClock(), MemoryEngine(images=baepo_test_images())
    kept: list[list[InstanceUsage]] = []
    reader = UsageReader(engine, MINE, clock, record=kept.append)
    try:
        one = start(engine, "app", "i1")
        two = start(engine, "app", "i2")
        start(engine, "other", "x", **{"baepo.installation": "someone else's"})
        engine.consume(one, memory_bytes=30 << 20)
        first = await reader.read()
        assert first is not None
        assert {(u.instance, u.cpu_percent, u.memory_bytes) for u in first} == {
            ("i1", None, 30 << 20),
            ("i2", None, 4 << 20),
        }
        assert {u.memory_limit_bytes for u in first} == {128 << 20}
        clock.advance(10)
        engine.consume(one, cpu_ns=5 * 10**9)  # half a core over 10 s
        engine.stop(two)
        second = await reader.read()
        assert second == [InstanceUsage("app", "i1", 50.0, 30 << 20, 128 << 20)]
        assert kept == [first, second]
    finally:
        engine.close()


async def test_an_engine_outage_is_no_figures_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, engine = FakeClock(), MemoryEngine(images=baepo_test_images())
    reader = UsageReader(engine, MINE, clock)
    try:
        start(engine, "app", "i1")
        engine.set_available(False)
        with caplog.at_level(logging.INFO, logger="baepo.metrics"):
            assert await reader.read() is None
            assert await reader.read() is None
            engine.set_available(True)
            found = await reader.read()
        assert found is not None and len(found) == 1
        lines = [r.getMessage() for r in caplog.records]
        assert len(lines) == 2, lines
        assert "cannot read the instances' CPU and memory from the engine" in lines[0]
        assert "can be read again" in lines[1]
    finally:
        engine.close()


class CountingEngine(MemoryEngine):
    def __init__(self) -> None:
        super().__init__(images=baepo_test_images())
        self.asked: list[str] = []

    def usage(self, instance_id: str) -> Usage | None:
        self.asked.append(instance_id)
        return super().usage(instance_id)


async def test_an_idle_services_instances_are_asked_once_a_minute_and_repeated_between() -> None:
    clock, engine = FakeClock(), CountingEngine()
    busy = {"web"}
    reader = UsageReader(engine, MINE, clock, busy=lambda service: service in busy)
    try:
        web, idle = start(engine, "web", "w1"), start(engine, "cron", "c1")
        for _ in range(7):  # 0 s, 10 s, ... 60 s
            found = await reader.read()
            assert found is not None and {u.instance for u in found} == {"w1", "c1"}
            clock.advance(10)
        assert engine.asked.count(web) == 7
        assert engine.asked.count(idle) == 2  # at 0 s and 60 s
        engine.consume(idle, cpu_ns=6 * 10**9)
        clock.advance(40)  # at 110 s: its figures of 60 s again
        (cron,) = [u for u in await reader.read() or [] if u.service == "cron"]
        assert cron.cpu_percent == 0.0 and engine.asked.count(idle) == 2  # idle 0 s to 60 s
        clock.advance(10)  # at 120 s: asked, 6 s of CPU over the 60 s since it was last
        (cron,) = [u for u in await reader.read() or [] if u.service == "cron"]
        assert cron.cpu_percent == 10.0 and engine.asked.count(idle) == 3
    finally:
        engine.close()


class ListingEngine(CountingEngine):
    def __init__(self) -> None:
        super().__init__()
        self.listed = 0

    def list(self, labels: Mapping[str, str]) -> builtins.list[Instance]:
        self.listed += 1
        return super().list(labels)


async def test_the_reconcilers_listing_spares_a_listing_of_the_engine_each_reading() -> None:
    clock, engine = FakeClock(), ListingEngine()
    known: list[Instance] | None = None
    reader = UsageReader(engine, MINE, clock, listing=lambda: known)
    try:
        one = start(engine, "app", "i1")
        found = await reader.read()  # no listing yet: the engine is asked
        assert found is not None and [u.instance for u in found] == ["i1"]
        assert engine.listed == 1
        two = start(engine, "app", "i2")
        known = [engine.inspect(one), engine.inspect(two)]
        clock.advance(10)
        found = await reader.read()
        assert found is not None and {u.instance for u in found} == {"i1", "i2"}
        assert engine.listed == 1 and engine.asked.count(two) == 1
        engine.stop(one)  # stopped since the listing: no figures, no error
        engine.remove(one)
        clock.advance(10)
        found = await reader.read()
        assert found is not None and [u.instance for u in found] == ["i2"]
    finally:
        engine.close()
