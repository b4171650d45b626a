"""Leases on SQLite and PostgreSQL: one holder at a time, taken over once expired, handed over
at once when released; time from a fake clock."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from baepo.clock import FakeClock
from baepo.store import Database
from baepo.store.leases import Lease


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_the_first_claimant_holds_the_lease_and_renews_it(
    state_db: Database, clock: FakeClock
) -> None:
    a, b = Lease(state_db, "control", "a", clock), Lease(state_db, "control", "b", clock)
    assert a.claim() == clock.now() + timedelta(seconds=10)
    assert b.claim() is None
    clock.advance(8)
    assert a.claim() == clock.now() + timedelta(seconds=10)  # renewed: 10 s from now
    clock.advance(8)
    assert b.claim() is None  # 16 s after the first claim, but renewed at 8
    holder, term, _ = a.holder_now() or ("", 0, None)
    assert (holder, term) == ("a", 1)


def test_an_expired_lease_is_taken_over_in_a_new_term(state_db: Database, clock: FakeClock) -> None:
    a, b = Lease(state_db, "control", "a", clock), Lease(state_db, "control", "b", clock)
    a.claim()
    clock.advance(9.9)
    assert b.claim() is None
    clock.advance(0.1)  # a did not renew: expired
    assert b.claim() is not None
    assert a.claim() is None  # the old holder learns it lost
    holder, term, _ = b.holder_now() or ("", 0, None)
    assert (holder, term) == ("b", 2)


def test_a_released_lease_is_free_at_once(state_db: Database, clock: FakeClock) -> None:
    a, b = Lease(state_db, "control", "a", clock), Lease(state_db, "control", "b", clock)
    a.claim()
    b.release()  # not b's: changes nothing
    assert b.claim() is None
    a.release()
    assert b.claim() is not None


def test_leases_of_other_names_are_apart(state_db: Database, clock: FakeClock) -> None:
    assert Lease(state_db, "control", "a", clock).claim() is not None
    assert Lease(state_db, "other", "b", clock).claim() is not None


def test_of_many_claimants_at_once_one_holds_it(state_db: Database, clock: FakeClock) -> None:
    claimants = [Lease(state_db, "control", f"p{i}", clock) for i in range(8)]
    for _ in range(3):  # a new lease, then two takeovers of an expired one
        with ThreadPoolExecutor(8) as pool:
            got = list(pool.map(lambda lease: lease.claim(), claimants))
        assert sum(expiry is not None for expiry in got) == 1
        clock.advance(10)
