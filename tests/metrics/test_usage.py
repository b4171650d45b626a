"""The engine's figures per instance: CPU % between two readings, memory as the engine says,
running instances of this Baepo only, and an engine outage as no figures (logged once)."""

from __future__ import annotations

import logging

import pytest

from baepo.clock import FakeClock
from baepo.metrics import InstanceUsage, UsageReader
from baepo.runtime import LABEL_INSTANCE, LABEL_SERVICE, ContainerSpec
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
