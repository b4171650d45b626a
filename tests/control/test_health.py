"""Probing in a hurry: the instance that held requests wait for is probed until it passes."""

from __future__ import annotations

import pytest

from baepo.clock import FakeClock
from baepo.control.health import HURRY_EVERY_S, HealthTracker, probe_until_healthy
from baepo.control.planning import Health
from baepo.control.probes import ProbeResult
from baepo.control.spec import HealthCheck

pytestmark = pytest.mark.anyio

CHECK = HealthCheck(healthy_threshold=2)
INSTANCE = ("c1", "app-1-abc", "10.0.0.2:8080")


class Starting:
    """An app that listens after `refusals` probes."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.probes = 0

    async def probe(self, address: str, check: HealthCheck) -> ProbeResult:
        self.probes += 1
        if self.probes <= self.refusals:
            return ProbeResult(False, "connection refused")
        return ProbeResult(True, "connected")


async def test_probes_every_few_milliseconds_until_healthy() -> None:
    clock = FakeClock()
    tracker = HealthTracker(clock.monotonic, poll_s=0.25)
    tracker.adopt("c1", routed=False)
    app = Starting(refusals=5)
    began = clock.monotonic()
    change = await probe_until_healthy(tracker, app, clock.sleep, INSTANCE, CHECK, 1000)
    assert change is not None and change.health is Health.HEALTHY
    assert app.probes == 7  # five refused, then the two passes the threshold asks for
    assert clock.monotonic() - began == pytest.approx(6 * HURRY_EVERY_S)
    assert tracker.health("c1") is Health.HEALTHY


async def test_gives_up_after_its_probes_and_the_passes_carry_on() -> None:
    clock = FakeClock()
    tracker = HealthTracker(clock.monotonic, poll_s=0.25)
    tracker.adopt("c1", routed=False)
    app = Starting(refusals=100)
    assert await probe_until_healthy(tracker, app, clock.sleep, INSTANCE, CHECK, 10) is None
    assert app.probes == 10
    assert tracker.health("c1") is Health.STARTING


async def test_an_instance_no_longer_tracked_is_not_probed() -> None:
    clock = FakeClock()
    tracker = HealthTracker(clock.monotonic, poll_s=0.25)
    app = Starting(refusals=0)
    assert await probe_until_healthy(tracker, app, clock.sleep, INSTANCE, CHECK, 10) is None
    assert app.probes == 0
