"""A supervised router: HAProxy killed under load comes back on its own, with its table.

A real HAProxy, real backends and a client opening a new TLS connection per request, as the
services' users do; `kill -9` of HAProxy's master, and separately of its worker.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from baepo.router import HAProxyRouter, HAProxyUnavailable, RouterSupervisor, ServerState
from tests.router.backends import Backend
from tests.router.conftest import Plane
from tests.router.routes import add_server, drain_server, ensure_service
from tests.router.test_haproxy import wait_until

pytestmark = pytest.mark.integration

LOAD_LIMIT_S = 60.0  # a load thread never outlives this, whatever the test does
LOAD_MAX_REQUESTS = 20_000


@dataclass
class Load:
    """Requests sent one after the other on new connections, each recorded as (time, ok)."""

    plane: Plane
    host: str
    results: list[tuple[float, bool, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Load:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(30)

    def _run(self) -> None:
        port = self.plane.settings.https_port
        deadline = time.monotonic() + LOAD_LIMIT_S
        while (
            not self._stop.is_set()
            and time.monotonic() < deadline
            and len(self.results) < LOAD_MAX_REQUESTS
        ):
            try:  # a new connection (and TLS handshake) per request
                with httpx.Client(verify=self.plane.tls, timeout=5) as client:
                    r = client.get(
                        f"https://127.0.0.1:{port}/",
                        headers={"Host": self.host},
                        extensions={"sni_hostname": self.host},
                    )
                ok, body = r.status_code == 200, r.text
            except httpx.HTTPError as exc:
                ok, body = False, repr(exc)
            self.results.append((time.monotonic(), ok, body))
            if not ok:
                time.sleep(0.01)  # a refused connection returns at once: do not spin

    def count(self) -> int:
        return len(self.results)

    def succeeded_since(self, start: int) -> int:
        return sum(1 for _, ok, _ in self.results[start:] if ok)

    def outage(self) -> float:
        """Seconds from the first failed request to the last one (0 if none failed)."""
        failed = [t for t, ok, _ in self.results if not ok]
        return failed[-1] - failed[0] if failed else 0.0


@pytest.fixture
def supervised(plane: Plane) -> Iterator[RouterSupervisor]:
    supervisor = RouterSupervisor(plane.router, interval=0.2)
    supervisor.start()
    yield supervisor
    supervisor.stop()


def _kill(plane: Plane, which: str) -> int:
    procs = plane.router.processes()
    pid = procs.master if which == "master" else procs.workers[0]
    os.kill(pid, signal.SIGKILL)
    return procs.master


@pytest.mark.parametrize("which", ["master", "worker"])
def test_haproxy_killed_under_load_is_back_with_its_table_and_certificates(
    plane: Plane,
    backends: dict[str, Backend],
    supervised: RouterSupervisor,
    which: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="baepo.router")
    host = "app.baepo.test"
    ensure_service(plane.router, "app", [host])
    add_server(plane.router, "app", "a", backends["a"].address)
    add_server(plane.router, "app", "old", backends["old"].address)
    drain_server(plane.router, "app", "old")  # drains live only at runtime: must survive
    with Load(plane, host) as load:
        wait_until(lambda: load.succeeded_since(0) >= 20)
        master = _kill(plane, which)
        wait_until(lambda: plane.router.pid not in (None, master), timeout=30)
        recovered = load.count()
        wait_until(lambda: load.count() >= recovered + 50, timeout=30)
    after = load.results[recovered:]
    failed_after = [body for _, ok, body in after if not ok]
    # Requests that started before the new HAProxy answered may fail; none after.
    first_ok = next(i for i, (_, ok, _) in enumerate(after) if ok)
    assert [b for _, ok, b in after[first_ok:] if not ok] == []
    assert all(body.startswith("a ") for _, ok, body in after[first_ok:] if ok), failed_after
    print(f"kill -9 of the {which}: requests failed for {load.outage():.2f} s")
    states = {s.name: s.state for s in plane.router.service_stats("app").servers}
    assert states == {"a": ServerState.READY, "old": ServerState.DRAIN}
    gone = [r for r in caplog.records if "is gone" in r.getMessage()]
    back = [r for r in caplog.records if "is back" in r.getMessage()]
    assert [r.levelno for r in gone] == [logging.WARNING]
    assert [r.levelno for r in back] == [logging.INFO]


def test_an_adopted_haproxy_is_supervised_too(plane: Plane, backends: dict[str, Backend]) -> None:
    host = "app.baepo.test"
    ensure_service(plane.router, "app", [host])
    add_server(plane.router, "app", "a", backends["a"].address)
    successor = HAProxyRouter(plane.settings, plane.ca, plane.clock)  # Baepo came back
    successor.start()
    plane.router = successor  # the fixture stops the HAProxy it now owns
    supervisor = RouterSupervisor(successor, interval=0.2)
    supervisor.start()
    try:
        pid = successor.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # not our child: nobody gets a SIGCHLD for it
        wait_until(lambda: successor.pid not in (None, pid), timeout=30)
        wait_until(lambda: _answers(plane, host), timeout=30)
        assert plane.get(host).text.startswith("a ")
    finally:
        supervisor.stop()


def test_an_outage_is_one_event_in_the_log_however_often_it_is_asked(
    plane: Plane, backends: dict[str, Backend], caplog: pytest.LogCaptureFixture
) -> None:
    """While HAProxy cannot come back (its port was taken meanwhile), every caller gets an
    error, but the log says it once; when the port is free again it comes back, said once."""
    caplog.set_level(logging.INFO, logger="baepo.router")
    ensure_service(plane.router, "app", ["app.baepo.test"])
    add_server(plane.router, "app", "a", backends["a"].address)
    master = _kill(plane, "master")
    wait_until(lambda: not plane.router._process.running())
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        wait_until(lambda: _bound(squatter, plane.settings.https_port))  # its worker exits
        squatter.listen()
        errors = 0
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:  # a reconciler asking many times a second
            try:
                plane.router.service_stats("app")
            except Exception:
                errors += 1
            assert plane.router.heal() is False
            time.sleep(0.02)
        assert errors > 10
    wait_until(plane.router.heal, timeout=30)
    assert plane.router.pid != master
    assert plane.get("app.baepo.test").text.startswith("a ")
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert [m for m in messages if "is gone" in m[1]] == [messages[0]]
    assert len([m for m in messages if "cannot start HAProxy again" in m[1]]) == 1
    assert len([m for m in messages if "is back" in m[1]]) == 1


def test_a_stopped_router_is_not_restarted(plane: Plane) -> None:
    plane.router.stop()
    assert plane.router.heal() is False
    assert plane.router.pid is None


def _bound(sock: socket.socket, port: int) -> bool:
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        return False
    return True


def _answers(plane: Plane, host: str) -> bool:
    try:
        return plane.get(host, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


class _Flaky:
    """A router whose heal() fails once, then reports the data plane running."""

    def __init__(self) -> None:
        self.calls = 0

    def heal(self) -> bool:
        self.calls += 1
        if self.calls == 2:
            raise HAProxyUnavailable("boom")
        return True


def test_the_supervisor_keeps_asking_and_stops_when_told() -> None:
    router = _Flaky()
    supervisor = RouterSupervisor(router, interval=0.01)
    supervisor.start()
    try:
        wait_until(lambda: router.calls >= 5)  # an error does not end the watch
        assert supervisor.running
    finally:
        supervisor.stop()
    assert not supervisor.running  # its thread has ended: no call comes after stop()
