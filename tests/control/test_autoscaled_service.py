"""A service under load gets more instances, each routed once healthy, and fewer when the load
goes, drained before stopping; each change is an event with the autoscaler's reason."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from baepo.control import Reconciler, Scaling, SpecChange
from baepo.router import ServerState
from tests.control.conftest import World, app_image

pytestmark = pytest.mark.anyio

APP = app_image("1").ref


def autoscaled(world: World) -> tuple[Reconciler, Scaling]:
    scaling = Scaling(world.clock)
    return world.new_reconciler(scaling), scaling


def ready(world: World) -> int:
    route = world.router.routes.get("app")
    return 0 if route is None else sum(s.state is ServerState.READY for s in route.servers)


@pytest.mark.parametrize(
    ("bounds", "per_instance"),
    [
        ({"max_concurrency": 10, "max_instances": 6}, 10),
        ({}, 100),  # the defaults a user gets: max concurrency 100, max instances 25
    ],
)
async def test_load_adds_instances_and_its_end_removes_them(
    world: World, bounds: dict[str, int], per_instance: int
) -> None:
    reconciler, scaling = autoscaled(world)
    fields = {"name": "app", "image": APP, **bounds}
    _, op = world.services.create(SpecChange(fields))
    await world.settle(world.done(op.id), reconciler)
    assert ready(world) == 1

    def load(in_flight: int) -> None:  # what the router's sampler reports, once a second
        scaling.observe("app", in_flight, 0, arrived=in_flight)

    passes = 0

    def serving(n: int) -> bool:
        nonlocal passes
        passes += 1
        if passes % 4 == 0:  # four passes of 0.25 s: one observation a second
            load(in_flight)
        return ready(world) == n

    in_flight = per_instance * 35 // 10  # over a target of 70 % of max concurrency each: 5
    await world.settle(lambda: serving(5), reconciler)
    events = [e.message for e in world.services.events("app")]
    assert any(m.startswith("scaling: ") and "→ 5" in m for m in events), events
    assert len(world.containers(running=True)) >= 5

    in_flight = 0  # the load stops: back to one, never below, through draining
    await world.settle(
        lambda: serving(1) and len(world.containers(running=True)) == 1,
        reconciler,
        max_passes=2000,
    )
    events = [e.message for e in world.services.events("app")]
    assert any(m.endswith("→ 1") for m in events if m.startswith("scaling: ")), events


async def test_without_observations_the_minimum_holds(world: World) -> None:
    reconciler, _ = autoscaled(world)
    fields = {"name": "app", "image": APP, "min_instances": 2, "max_instances": 6}
    _, op = world.services.create(SpecChange(fields))
    await world.settle(world.done(op.id), reconciler)
    for _ in range(40):
        await reconciler.tick()
        world.clock.advance(0.25)
    assert ready(world) == 2
    assert not [e for e in world.services.events("app") if e.message.startswith("scaling: ")]


async def test_deploys_in_a_row_keep_the_count_a_deploy_doubles_for_a_moment(world: World) -> None:
    """A start-first deploy routes the new revision's instances beside the old ones for a
    moment. The autoscaler sees the service's size, not the sum of both revisions: a deploy
    started while the previous one's instances overlapped, within the scale-down delay of a new
    autoscaler, must not keep (and then start) the overlap's count, deploy after deploy."""
    reconciler, scaling = autoscaled(world)
    _, op = world.services.create(SpecChange({"name": "app", "image": APP}))
    passes = 0

    def idle_then(done: Callable[[], bool]) -> Callable[[], bool]:
        def check() -> bool:
            nonlocal passes
            passes += 1
            if passes % 4 == 0:
                scaling.observe("app", 0, 0)
            most[0] = max(most[0], len(world.containers(running=True)))
            return done()

        return check

    most = [0]
    await world.settle(idle_then(world.done(op.id)), reconciler)
    for message in ("a", "b", "c", "d"):
        op = world.services.update("app", SpecChange({"env": {"MESSAGE": message}}))
        await world.settle(idle_then(world.done(op.id)), reconciler)
        assert world.status(op.id) == "SUCCEEDED"
    assert most[0] <= 2, most
    await world.settle(idle_then(lambda: len(world.containers(running=True)) == 1), reconciler)
    assert ready(world) == 1
