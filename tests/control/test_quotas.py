"""The instance quota bounds what the autoscaler starts across an owner's services: the pure
cap, the ledger the reconciler keeps, and the event a capped scale-up leaves."""

from __future__ import annotations

import pytest

from baepo.control import Quota, Scaling, SpecChange
from baepo.control.callers import Caller
from baepo.control.quotas import InstanceLedger, within_quota
from baepo.router import ServerState
from tests.control.conftest import World, app_image

APP = app_image("1").ref
ALICE = Caller("alice", owners=frozenset({"alice"}))


@pytest.mark.parametrize(
    ("wanted", "minimum", "others", "limit", "given"),
    [
        (5, 1, 0, 100, 5),  # room enough
        (5, 1, 97, 100, 3),  # what is left
        (5, 1, 100, 100, 1),  # nothing left: the minimum the quota admitted stays
        (5, 2, 150, 100, 2),  # others over the quota (an admin made them): still the minimum
        (0, 0, 100, 100, 0),  # scaled to zero
        (3, 1, 96, 100, 3),  # exactly what is left
    ],
)
def test_within_quota(wanted: int, minimum: int, others: int, limit: int, given: int) -> None:
    assert within_quota(wanted, minimum, others, limit) == given


def test_the_ledger_counts_the_owners_other_services_and_tells_a_cut_once() -> None:
    ledger = InstanceLedger(Quota(instances=10))
    ledger.hold("b", "alice", 4)
    ledger.hold("x", "bob", 9)  # another owner's: not counted
    first = ledger.admit("a", "alice", 1, 8)
    assert first.instances == 6
    assert first.note == (
        "scaling capped by the instance quota: alice's services may run 10 instances"
        " and its others run 4 → 6 (wanted 8)"
    )
    assert ledger.admit("a", "alice", 1, 8).note is None  # told already
    assert ledger.admit("a", "alice", 1, 5) == ledger.admit("a", "alice", 1, 5)
    assert ledger.admit("a", "alice", 1, 5).instances == 5
    assert ledger.admit("b", "alice", 1, 9).instances == 5  # a runs 5 now
    ledger.forget_all_but({"a"})
    assert ledger.admit("a", "alice", 1, 10).instances == 10
    assert ledger.admit("c", "admin", 1, 500).instances == 500  # Baepo's own: unbound


@pytest.mark.anyio
async def test_a_scale_up_past_the_owners_quota_is_capped_with_an_event(world: World) -> None:
    scaling = Scaling(world.clock)
    reconciler = world.new_reconciler(scaling, Quota(instances=4))
    for name in ("app", "other"):
        fields = {"name": name, "image": APP, "max_concurrency": 10, "max_instances": 10}
        _, op = world.services.create(SpecChange(fields), caller=ALICE)
        await world.settle(world.done(op.id), reconciler)

    def ready(name: str) -> int:
        route = world.router.routes.get(name)
        return 0 if route is None else sum(s.state is ServerState.READY for s in route.servers)

    passes = 0

    def loaded() -> bool:
        nonlocal passes
        passes += 1
        if passes % 4 == 0:  # one observation a second: 70 in flight wants 10 instances
            scaling.observe("app", 70, 0, arrived=70)
            scaling.observe("other", 0, 0)
        return ready("app") == 3

    await world.settle(loaded, reconciler)
    for _ in range(40):  # it stays capped: 3 here + 1 for the other service = the quota
        loaded()
        await reconciler.tick()
        world.clock.advance(0.25)
    assert ready("app") == 3 and ready("other") == 1
    assert len(world.containers("app", running=True)) == 3
    capped = [
        e.message
        for e in world.services.events("app")
        if "capped by the instance quota" in e.message
    ]
    assert len(capped) >= 1
    assert capped[-1].startswith("scaling capped by the instance quota: alice's services may run 4")
