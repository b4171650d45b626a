"""What an idle reconcile pass costs: it touches only services that changed.

Each pass reads every service's change mark in one query, the containers and the router's
state once; a service whose rows, containers, route and health verdicts are as its last quiet
pass left them is not converged again (no reads of its own, no probes), until a full pass.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from baepo.control import SpecChange
from baepo.control.reconciler import FULL_PASS_S
from baepo.control.tables import ServiceRow
from baepo.runtime import Network
from tests.control.conftest import World

pytestmark = pytest.mark.anyio

APP_1 = "localhost:5000/team/app:1"


def count_sessions(world: World, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A counter of the database sessions opened from now on."""
    opened = [0]
    session = world.db.session

    @contextlib.contextmanager
    def counted() -> Iterator[Session]:
        opened[0] += 1
        with session() as s:
            yield s

    monkeypatch.setattr(world.db, "session", counted)
    return opened


async def create(world: World, *names: str) -> None:
    ops = [world.services.create(SpecChange({"name": n, "image": APP_1}))[1] for n in names]
    await world.settle(lambda: all(world.done(op.id)() for op in ops))
    assert all(world.status(op.id) == "SUCCEEDED" for op in ops)


async def idle_pass(world: World) -> None:
    world.clock.advance(2)
    await world.reconciler.tick()


async def test_an_idle_pass_does_not_touch_unchanged_services(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await create(world, "app", "bee", "cat")
    for _ in range(3):
        await idle_pass(world)  # the last moves settle
    opened = count_sessions(world, monkeypatch)
    probes, reads = world.prober.probes, world.router.reads
    for _ in range(5):
        await idle_pass(world)
    # Two sessions a pass whatever the number of services: the push log's cursor (its pushes,
    # and the services they may deploy, are read only when there are some), the change marks
    # of every service.
    assert opened[0] == 5 * 2
    assert world.prober.probes == probes  # serving instances are the router's to check
    assert world.router.reads == reads + 5  # one look at the router a pass, for all

    # A change to one service (a new operation) makes a pass over it, not over the others.
    opened[0] = 0
    op = world.services.update("bee", SpecChange({"min_instances": 2}))
    await world.settle(world.done(op.id))
    assert world.status(op.id) == "SUCCEEDED"
    assert len(world.router.ready("bee")) == 2
    await idle_pass(world)  # the operation's end is a change too: one more pass over "bee"
    opened[0] = 0
    for _ in range(3):
        await idle_pass(world)
    assert opened[0] == 3 * 2


async def test_a_full_pass_still_comes_and_finds_what_no_mark_shows(world: World) -> None:
    await create(world, "app")
    for _ in range(3):
        await idle_pass(world)
    # The stored configuration edited behind Baepo's back (a restored backup, a hand edit):
    # no operation, no change mark. The full pass, level-triggered, converges it anyway.
    with world.db.session() as s, s.begin():
        row = s.scalars(sa.select(ServiceRow).where(ServiceRow.name == "app")).one()
        row.spec = {**row.spec, "max_concurrency": 7}
    await idle_pass(world)
    assert world.router.routes["app"].max_concurrency == 100
    world.clock.advance(FULL_PASS_S)
    await world.reconciler.tick()
    assert world.router.routes["app"].max_concurrency == 7


async def test_networks_are_listed_when_a_service_went_away_not_on_idle_passes(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await create(world, "app", "bee")
    listings = [0]
    networks = world.engine.networks

    def counted(labels: Mapping[str, str]) -> list[Network]:
        listings[0] += 1
        return networks(labels)

    monkeypatch.setattr(world.engine, "networks", counted)
    for _ in range(10):
        await idle_pass(world)
    assert listings[0] == 0
    op = world.services.delete("bee")
    await world.settle(world.done(op.id))
    await world.settle(lambda: len(world.engine.networks({})) == 1)
    assert listings[0] >= 1
    [left] = world.engine.networks({})
    assert left.labels["baepo.service"] == "app"
