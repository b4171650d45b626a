"""Leadership over a lease: a follower leads from the claim that gives it the lease, a leader
that can no longer be sure stops for good, and a clean stop hands the lease over; a fake clock
jumps between claims."""

from __future__ import annotations

from datetime import datetime

import pytest

from baepo.clock import FakeClock
from baepo.leadership import Leadership
from baepo.store import Database, StoreUnavailable
from baepo.store.leases import Lease


class Loops:
    """What the server does when a process starts or stops leading."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def lead(self) -> None:
        self.calls.append("lead")

    def lost(self) -> None:
        self.calls.append("lost")


class Unreachable(Lease):
    """A lease whose database stops answering when told to."""

    down = False

    def claim(self) -> datetime | None:
        if self.down:
            raise StoreUnavailable("connection refused")
        return super().claim()


def process(db: Database, clock: FakeClock, name: str) -> tuple[Leadership, Loops, Unreachable]:
    loops = Loops()
    lease = Unreachable(db, "control", name, clock)
    return Leadership(lease, clock, loops.lead, loops.lost), loops, lease


@pytest.mark.anyio
async def test_one_process_leads_and_the_other_takes_over_when_it_stops_renewing(
    state_db: Database,
) -> None:
    clock = FakeClock()
    first, first_loops, _ = process(state_db, clock, "first")
    second, second_loops, _ = process(state_db, clock, "second")
    await first.tick()
    await second.tick()
    assert (first.state, second.state) == ("leader", "follower")
    assert first_loops.calls == ["lead"] and second_loops.calls == []
    for _ in range(10):  # renewing every 2 s: the second never gets it
        clock.advance(2)
        await first.tick()
        await second.tick()
    assert second.state == "follower"
    # The first is killed (-9): no more renewals. The second leads once the lease expired.
    ticks = 0
    while second.state == "follower":
        clock.advance(2)
        await second.tick()
        ticks += 1
    assert ticks == 5  # 10 s after the first's last renewal
    assert second_loops.calls == ["lead"]


@pytest.mark.anyio
async def test_a_leader_that_cannot_renew_stops_before_its_lease_expires(
    state_db: Database,
) -> None:
    clock = FakeClock()
    leader, loops, lease = process(state_db, clock, "leader")
    other, other_loops, _ = process(state_db, clock, "other")
    await leader.tick()
    lease.down = True
    clock.advance(6)
    await leader.tick()
    assert leader.state == "leader"  # 8 s of lease are left: still sure
    clock.advance(2)
    await leader.tick()
    assert leader.state == "lost" and loops.calls == ["lead", "lost"]  # 2 s before expiry
    clock.advance(2)
    await other.tick()
    assert other.state == "leader" and other_loops.calls == ["lead"]
    lease.down = False
    await leader.tick()
    assert loops.calls == ["lead", "lost"]  # lost for good: it leads no more


@pytest.mark.anyio
async def test_a_clean_stop_hands_the_lease_over_at_once(state_db: Database) -> None:
    clock = FakeClock()
    leader, _, _ = process(state_db, clock, "leader")
    other, _, _ = process(state_db, clock, "other")
    await leader.tick()
    await other.tick()
    leader.release()
    await other.tick()
    assert other.state == "leader"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
