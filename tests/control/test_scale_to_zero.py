"""Scale to zero in the control loop (fake engine, router and clock): a min-0 service idles
down to no instance, drained first; the activator's demand brings one back (one, however many
requests wait); a restart of Baepo stops nothing it has not watched."""

from __future__ import annotations

import pytest

from baepo.control import Reconciler, Scaling, SpecChange
from baepo.router import ServerState
from tests.control.conftest import World, app_image

pytestmark = pytest.mark.anyio

APP = app_image("1").ref


def ready(world: World) -> int:
    route = world.router.routes.get("app")
    return 0 if route is None else sum(s.state is ServerState.READY for s in route.servers)


async def created_at_zero(world: World) -> tuple[Reconciler, Scaling]:
    scaling = Scaling(world.clock)
    reconciler = world.new_reconciler(scaling)
    _, op = world.services.create(SpecChange({"name": "app", "image": APP, "min_instances": 0}))
    await world.settle(world.done(op.id), reconciler)
    assert world.status(op.id) == "SUCCEEDED"
    assert ready(world) == 1, "a deploy proves the revision with one instance"
    return reconciler, scaling


async def idle_to_zero(world: World, reconciler: Reconciler, scaling: Scaling) -> None:
    passes = 0

    def gone() -> bool:
        nonlocal passes
        passes += 1
        if passes % 4 == 0:  # the sampler: one observation a second, no request
            scaling.observe("app", 0, 0)
        return not world.containers(running=True)

    await world.settle(gone, reconciler, max_passes=1000)


async def test_an_idle_min_zero_service_drains_and_stops_its_last_instance(world: World) -> None:
    reconciler, scaling = await created_at_zero(world)
    drained: list[str] = []
    passes = 0

    def gone() -> bool:
        nonlocal passes
        passes += 1
        if passes % 4 == 0:
            scaling.observe("app", 0, 0)
        route = world.router.routes["app"]
        drained.extend(s.name for s in route.servers if s.state is ServerState.DRAIN)
        return not world.containers(running=True)

    await world.settle(gone, reconciler, max_passes=1000)
    assert drained, "the last instance is drained before it is stopped"
    assert world.router.routes["app"].servers == ()  # the route stays: the activator holds
    events = [e.message for e in world.services.events("app")]
    assert any(m.startswith("scaling: no request for") and m.endswith("→ 0") for m in events)


async def test_a_demand_at_zero_starts_one_instance_whatever_the_requests(world: World) -> None:
    reconciler, scaling = await created_at_zero(world)
    await idle_to_zero(world, reconciler, scaling)
    for _ in range(50):  # fifty held requests; the activator says so about once a second
        scaling.demand("app")
    await world.settle(lambda: ready(world) == 1, reconciler)
    for _ in range(8):
        scaling.demand("app")
        await reconciler.tick()
        world.clock.advance(0.25)
    assert len(world.containers()) == 1
    assert ready(world) == 1


async def test_a_restart_keeps_the_instances_of_a_min_zero_service(world: World) -> None:
    await created_at_zero(world)
    running = world.containers(running=True)
    restarted = world.new_reconciler(Scaling(world.clock))  # no observation yet
    for _ in range(40):
        await restarted.tick()
        world.clock.advance(0.25)
    assert world.containers(running=True) == running
    assert ready(world) == 1


async def test_a_paused_min_zero_service_is_not_woken(world: World) -> None:
    reconciler, scaling = await created_at_zero(world)
    op = world.services.pause("app")
    await world.settle(world.done(op.id), reconciler)
    scaling.demand("app")
    for _ in range(8):
        await reconciler.tick()
        world.clock.advance(0.25)
    assert not world.containers(running=True)
