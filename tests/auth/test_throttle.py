"""Failed sign-ins cost the one who sends them: a leaky bucket per address and per account,
and a bounded number of password checks at once."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from baepo.auth import Auth
from baepo.auth.tables import SignInBucketRow
from baepo.auth.throttle import Hashing, SharedThrottle, Throttle, retry_after
from baepo.clock import FakeClock
from baepo.store import Database


def test_a_burst_of_failures_is_free_then_one_more_per_leak() -> None:
    clock = FakeClock()
    throttle = Throttle(clock, burst=3, rate=0.5)
    for _ in range(2):
        throttle.failed(["address:a"])
    assert throttle.wait(["address:a"]) == 0
    throttle.failed(["address:a"])
    assert throttle.wait(["address:a"]) == pytest.approx(2.0)  # one failure leaks in 2 s
    clock.advance(1.0)
    assert throttle.wait(["address:a"]) == pytest.approx(1.0)
    clock.advance(1.0)
    assert throttle.wait(["address:a"]) == 0
    throttle.failed(["address:a"])
    assert throttle.wait(["address:a"]) == pytest.approx(2.0)


def test_the_longest_wait_of_the_keys_counts_and_others_are_untouched() -> None:
    clock = FakeClock()
    throttle = Throttle(clock, burst=2, rate=1.0)
    for _ in range(5):
        throttle.failed(["address:a", "account:alice"])
    throttle.failed(["account:alice"])
    assert throttle.wait(["address:a"]) == pytest.approx(4.0)
    assert throttle.wait(["address:b", "account:alice"]) == pytest.approx(5.0)
    assert throttle.wait(["address:b", "account:bob"]) == 0


def test_the_table_is_bounded_and_forgets_drained_keys_first() -> None:
    clock = FakeClock()
    throttle = Throttle(clock, burst=1, rate=1.0, max_keys=3)
    throttle.failed(["old"])
    clock.advance(10)  # "old" has drained
    for key in ("a", "b"):
        throttle.failed([key])
    throttle.failed(["c"])
    assert len(throttle) == 3
    assert throttle.wait(["a", "b", "c"]) > 0
    throttle.failed(["d"])  # full of live keys: the longest-quiet one goes
    assert len(throttle) == 3
    assert throttle.wait(["a"]) == 0


@pytest.mark.parametrize(("seconds", "header"), [(0.01, 1), (1.0, 1), (1.2, 2), (30.0, 30)])
def test_retry_after_is_whole_seconds_and_never_zero(seconds: float, header: int) -> None:
    assert retry_after(seconds) == header


def test_hashing_turns_are_bounded_and_a_late_one_gives_up() -> None:
    hashing = Hashing(2, patience=0.01)
    assert hashing.acquire() and hashing.acquire()
    assert not hashing.acquire()
    hashing.release()
    assert hashing.acquire()


def test_hashing_never_runs_more_checks_than_slots() -> None:
    hashing = Hashing(2, patience=5)
    running = 0
    most = 0
    lock = threading.Lock()
    gate = threading.Barrier(8)

    def check() -> None:
        nonlocal running, most
        gate.wait()
        assert hashing.acquire()
        with lock:
            running += 1
            most = max(most, running)
        with lock:
            running -= 1
        hashing.release()

    threads = [threading.Thread(target=check) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most <= 2


# -- SharedThrottle: the buckets in the database, one budget for every process ----------------


def test_two_processes_on_one_database_count_one_clients_failures_together(
    state_db: Database,
) -> None:
    clock = FakeClock()
    here, there = (SharedThrottle(state_db, clock, burst=3, rate=0.5) for _ in range(2))
    here.failed(["account:guessed"])
    there.failed(["account:guessed"])
    assert here.wait(["account:guessed"]) == there.wait(["account:guessed"]) == 0
    here.failed(["account:guessed", "address:a"])
    assert there.wait(["account:guessed"]) == pytest.approx(2.0)  # the third failure is here's
    assert there.wait(["address:a"]) == 0
    clock.advance(1.0)
    assert here.wait(["address:b", "account:guessed"]) == pytest.approx(1.0)
    clock.advance(1.0)
    assert there.wait(["account:guessed"]) == 0


def test_shared_buckets_that_drained_long_ago_are_deleted_and_long_keys_are_hashed(
    state_db: Database,
) -> None:
    clock = FakeClock()
    throttle = SharedThrottle(state_db, clock, burst=2, rate=1.0)
    long_key = "address:" + "f" * 300
    throttle.failed([long_key])
    throttle.failed([long_key])
    assert throttle.wait([long_key]) == pytest.approx(1.0)
    with state_db.session() as s:
        [key] = s.scalars(sa.select(SignInBucketRow.key)).all()
    assert key.startswith("sha256:") and len(key) <= 128
    clock.advance(SharedThrottle.SWEEP_S + 10)
    throttle.failed(["account:other"])  # a failure sweeps, at most once a minute
    with state_db.session() as s:
        assert s.scalars(sa.select(SignInBucketRow.key)).all() == ["account:other"]


def test_auth_counts_failures_in_the_database_unless_it_is_alone_on_sqlite(
    state_db: Database,
) -> None:
    auth = Auth(state_db, b"k" * 32, FakeClock())
    kind = Throttle if state_db.is_sqlite else SharedThrottle
    assert isinstance(auth._throttle, kind)
