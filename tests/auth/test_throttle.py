"""Failed sign-ins cost the one who sends them: a leaky bucket per address and per account,
and a bounded number of password checks at once."""

from __future__ import annotations

import threading

import pytest

from baepo.auth.throttle import Hashing, Throttle, retry_after
from baepo.clock import FakeClock


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
