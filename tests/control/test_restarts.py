"""`kill -9` of Baepo at any moment of a deployment, then a restart.

The first reconciler dies after its N-th change to the world (a pull, a container started,
stopped or removed, a route written), for every N a deployment makes; a second reconciler,
with nothing in memory, over the same database, engine and router, must converge: the
operation ends (never stuck), one instance serves, nothing is orphaned or duplicated.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any

import pytest

from baepo.control import Reconciler, SpecChange
from baepo.router import Route, RouteState
from baepo.runtime import ContainerSpec, Credentials, Image, Instance
from tests.control.conftest import World, app_image
from tests.fakes.engine import MemoryEngine
from tests.fakes.router import MemoryRouter

pytestmark = pytest.mark.anyio


class Killed(BaseException):
    """Baepo's process ends here, mid-pass: nothing after this line runs."""


class Switch:
    def __init__(self, after: int) -> None:
        self.left = after
        self.fired = False

    def tick(self) -> None:
        if self.left == 0:
            self.fired = True
            raise Killed
        self.left -= 1


class DyingEngine:
    """MemoryEngine that dies before its (N+1)-th change."""

    def __init__(self, engine: MemoryEngine, switch: Switch) -> None:
        self._engine = engine
        self._switch = switch

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def pull(self, ref: str, auth: Credentials | None = None) -> Image:
        self._switch.tick()
        return self._engine.pull(ref, auth)

    def run(self, spec: ContainerSpec) -> Instance:
        self._switch.tick()
        return self._engine.run(spec)

    def stop(self, instance_id: str, timeout_s: float = 10) -> None:
        self._switch.tick()
        self._engine.stop(instance_id, timeout_s)

    def remove(self, instance_id: str) -> None:
        self._switch.tick()
        self._engine.remove(instance_id)

    def list(self, labels: Mapping[str, str]) -> builtins.list[Instance]:
        return self._engine.list(labels)


class DyingRouter:
    def __init__(self, router: MemoryRouter, switch: Switch) -> None:
        self._router = router
        self._switch = switch

    def get(self, service: str) -> RouteState | None:
        return self._router.get(service)

    def states(self) -> dict[str, RouteState]:
        return self._router.states()

    def put(self, route: Route) -> None:
        self._switch.tick()
        self._router.put(route)

    def remove(self, service: str) -> None:
        self._switch.tick()
        self._router.remove(service)


def doomed(world: World, after: int) -> tuple[Reconciler, Switch]:
    switch = Switch(after)
    reconciler = Reconciler(
        db=world.db,
        engine=DyingEngine(world.engine, switch),
        router=DyingRouter(world.router, switch),
        prober=world.prober,
        clock=world.clock,
        secrets=world.box,
        domain="localhost",
        registry=world.registry,
        timing=world.timing,
    )
    return reconciler, switch


async def run_until_killed(world: World, reconciler: Reconciler, switch: Switch, op: str) -> None:
    for _ in range(200):
        await reconciler.tick()
        if switch.fired or world.done(op)():
            return
        world.clock.advance(0.25)


async def create_app(world: World) -> None:
    _, op = world.services.create(SpecChange({"name": "app", "image": "localhost:5000/team/app:1"}))
    await world.settle(world.done(op.id))


@pytest.mark.parametrize("after", range(9))
async def test_a_deploy_survives_a_kill_after_any_change(world: World, after: int) -> None:
    await create_app(world)
    op = world.services.deploy("app", image="localhost:5000/team/app:2")
    first, switch = doomed(world, after)
    await run_until_killed(world, first, switch, op.id)
    assert switch.fired or world.status(op.id) == "SUCCEEDED"

    second = world.new_reconciler()
    await world.settle(world.done(op.id), reconciler=second)
    assert world.status(op.id) == "SUCCEEDED"
    (instance,) = world.containers()  # no orphan, no duplicate
    assert instance.running and instance.labels["baepo.revision"] == "2"
    assert world.router.ready("app") == {instance.labels["baepo.instance"]}
    for _ in range(10):  # and it stays that way
        await second.tick()
        world.clock.advance(1)
    assert world.containers() == [instance]


@pytest.mark.parametrize("after", range(6))
async def test_a_create_survives_a_kill_after_any_change(world: World, after: int) -> None:
    _, op = world.services.create(SpecChange({"name": "app", "image": "localhost:5000/team/app:1"}))
    first, switch = doomed(world, after)
    await run_until_killed(world, first, switch, op.id)
    second = world.new_reconciler()
    await world.settle(world.done(op.id), reconciler=second)
    assert world.status(op.id) == "SUCCEEDED"
    assert len(world.containers()) == 1
    assert world.services.describe("app").status == "RUNNING"


@pytest.mark.parametrize("after", range(4))
async def test_a_failing_deploy_still_fails_after_a_kill(world: World, after: int) -> None:
    await create_app(world)
    (old,) = world.containers()
    broken = app_image("3", respond=None)
    world.engine.publish(broken)
    world.prober.sick_images.add(broken.digest)
    op = world.services.deploy("app", image="localhost:5000/team/app:3")
    first, switch = doomed(world, after)
    await run_until_killed(world, first, switch, op.id)
    second = world.new_reconciler()
    await world.settle(world.done(op.id), reconciler=second)
    assert world.status(op.id) == "FAILED"
    await world.settle(lambda: len(world.containers()) == 1, reconciler=second)
    assert world.containers()[0].id == old.id
    assert world.router.ready("app") == {old.labels["baepo.instance"]}


async def test_a_restart_with_a_fresh_router_routes_what_runs_again(world: World) -> None:
    """The data plane lost its state too (HAProxy restarted empty): nothing is restarted."""
    await create_app(world)
    (running,) = world.containers()
    world.router.routes.clear()
    second = world.new_reconciler()
    await world.settle(lambda: bool(world.router.ready("app")), reconciler=second)
    assert world.containers() == [running]
    assert world.router.ready("app") == {running.labels["baepo.instance"]}
