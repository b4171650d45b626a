"""The server's thread pool: ordinary work as with ThreadPoolExecutor, and a shutdown that a
call which never returns cannot hold past its deadline."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from baepo.executor import DaemonExecutor


def test_results_and_exceptions_come_back_through_futures() -> None:
    pool = DaemonExecutor(4)
    assert [pool.submit(pow, 2, n).result(timeout=10) for n in range(5)] == [1, 2, 4, 8, 16]
    failed = pool.submit(int, "not a number")
    with pytest.raises(ValueError):
        failed.result(timeout=10)
    pool.shutdown()


def test_threads_are_capped_and_reused() -> None:
    pool = DaemonExecutor(3, "capped")
    gate = threading.Event()
    futures = [pool.submit(gate.wait, 10) for _ in range(10)]
    time.sleep(0.2)
    named = [t for t in threading.enumerate() if t.name.startswith("capped-")]
    assert len(named) == 3
    assert all(t.daemon for t in named)
    gate.set()
    assert all(f.result(timeout=10) for f in futures)
    for _ in range(20):  # idle threads take new work: no new thread for it
        pool.submit(time.sleep, 0).result(timeout=10)
    assert len([t for t in threading.enumerate() if t.name.startswith("capped-")]) == 3
    pool.shutdown()
    assert not [t for t in threading.enumerate() if t.name.startswith("capped-")]


def test_shutdown_waits_for_running_work_until_its_deadline_and_cancels_the_rest() -> None:
    pool = DaemonExecutor(1, "stuck")
    forever = threading.Event()
    running = pool.submit(forever.wait)
    queued = pool.submit(time.sleep, 0)
    time.sleep(0.1)
    pool.grace_deadline = time.monotonic() + 0.3
    started = time.monotonic()
    pool.shutdown(wait=True)
    assert time.monotonic() - started < 5
    assert queued.cancelled()
    assert not running.done()
    with pytest.raises(RuntimeError):
        pool.submit(time.sleep, 0)
    forever.set()
    assert running.result(timeout=10) is True


def test_quick_work_under_way_is_finished_by_a_shutdown() -> None:
    pool = DaemonExecutor(2)
    done = pool.submit(time.sleep, 0.2)
    pool.grace_deadline = time.monotonic() + 30
    pool.shutdown(wait=True)
    assert done.done() and not done.cancelled()


def test_asyncio_exits_past_a_call_that_never_returns() -> None:
    """As the loop's default executor: asyncio.run() joins it at the end, and a hung call
    does not hold the process (ThreadPoolExecutor's would, for as long as the call hangs)."""
    script = """
import asyncio, threading, time
from baepo.executor import DaemonExecutor

async def main():
    pool = DaemonExecutor(4)
    pool.grace_deadline = time.monotonic() + 0.5
    asyncio.get_running_loop().set_default_executor(pool)
    asyncio.get_running_loop().run_in_executor(None, threading.Event().wait)
    assert await asyncio.to_thread(sum, [1, 2]) == 3
    await asyncio.sleep(0.1)

asyncio.run(main())
print("exited")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "exited" in done.stdout
    assert "leaving 1 blocking calls unfinished" in done.stderr


def test_at_least_one_worker() -> None:
    with pytest.raises(ValueError):
        DaemonExecutor(0)
