"""`baepo up` keeps its router up: HAProxy killed with `kill -9` under load comes back on its
own within a second or two, serving the same services, and the log tells the outage once."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from baepo.config import Config
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.integration

HOST = "hello.localhost"
LOAD_LIMIT_S = 60.0


def haproxy_master(stack: Stack) -> int:
    pidfile = Config(data_dir=stack.baepo.data_dir).router_run_dir / "haproxy.pid"
    return int(pidfile.read_text().split()[0])


def workers_of(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


@pytest.mark.parametrize("which", ["master", "worker"])
def test_haproxy_killed_under_load_comes_back_by_itself(stack: Stack, which: str) -> None:
    stack.wait_for(HOST, "Hello from Baepo", timeout=60)
    results: list[tuple[float, bool]] = []
    stop = threading.Event()

    def load() -> None:  # a new connection per request, bounded in time and count
        deadline = time.monotonic() + LOAD_LIMIT_S
        while not stop.is_set() and time.monotonic() < deadline and len(results) < 20_000:
            try:
                ok = stack.https(HOST, timeout=5).status_code == 200
            except httpx.HTTPError:
                ok = False
            results.append((time.monotonic(), ok))
            if not ok:
                time.sleep(0.01)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while sum(ok for _, ok in results) < 20:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        master = haproxy_master(stack)
        victim = master if which == "master" else workers_of(master)[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while True:  # recovery: a new master answers requests again
            try:
                if haproxy_master(stack) != master and stack.https(HOST).status_code == 200:
                    break
            except (OSError, ValueError, httpx.HTTPError):
                pass
            assert time.monotonic() < deadline, "HAProxy did not come back"
            time.sleep(0.05)
        recovered = len(results)
        deadline = time.monotonic() + 30
        while len(results) < recovered + 50:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(30)
    after = results[recovered:]
    assert all(ok for _, ok in after), f"{sum(not ok for _, ok in after)} failed after recovery"
    failed = [t for t, ok in results if not ok]
    outage = failed[-1] - failed[0] if failed else 0.0
    print(f"kill -9 of HAProxy's {which} under load: requests failed for {outage:.2f} s")
    log = stack.baepo.log()
    assert log.count(f"HAProxy (master pid {master}) is gone") == 1
    assert log.count("cannot read the route") <= 3  # not a line per reconcile pass
