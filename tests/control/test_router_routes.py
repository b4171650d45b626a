"""`RouterRoutes`: the control room's view of the router room, under concurrent services."""

from __future__ import annotations

import time

import pytest

from baepo.control import Reconciler, RouterRoutes, SpecChange
from baepo.router.memory import MemoryRouter
from baepo.router.table import RoutingTable
from tests.control.conftest import REGISTRY, World

pytestmark = pytest.mark.anyio


class SlowRouter(MemoryRouter):
    """apply() takes as long as an HAProxy reload does."""

    def apply(self, table: RoutingTable) -> None:
        time.sleep(0.2)
        super().apply(table)


async def test_services_converged_together_both_keep_their_routes(world: World) -> None:
    router = SlowRouter()
    router.start()
    reconciler = Reconciler(
        db=world.db,
        engine=world.engine,
        routes=RouterRoutes(router),
        prober=world.prober,
        clock=world.clock,
        secrets=world.box,
        domain="localhost",
        registry=world.registry,
        timing=world.timing,
    )
    for name in ("aaa", "bbb"):
        world.services.create(SpecChange({"name": name, "image": f"{REGISTRY}/team/app:1"}))
    await reconciler.tick()  # both routes are put in the same pass, concurrently
    assert sorted(s.name for s in router.table().services) == ["aaa", "bbb"]
