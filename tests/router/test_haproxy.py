"""The real data plane, end to end: HAProxy on loopback, real TLS clients, Python backends.

Every test here is what a user of a Baepo service would notice.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from baepo.clock import FakeClock, SystemClock
from baepo.router import HAProxyRouter, Route, RouterError, Server
from baepo.router.errors import CommandFailed
from tests.components import missing
from tests.router.backends import Backend
from tests.router.conftest import Plane
from tests.router.routes import add_server, drain_server, ensure_service, remove_server, set_paused

pytestmark = pytest.mark.integration


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def in_flight(router: HAProxyRouter, service: str) -> dict[str, int]:
    return {s.name: s.in_flight for s in router.service_stats(service).servers}


class Background:
    """A request sent from a thread; `.result()` waits for its response."""

    def __init__(self, send: Callable[[], httpx.Response]) -> None:
        self._response: httpx.Response | BaseException | None = None

        def run() -> None:
            try:
                self._response = send()
            except BaseException as exc:
                self._response = exc

        self._thread = threading.Thread(target=run)
        self._thread.start()

    def result(self) -> httpx.Response:
        self._thread.join(60)
        assert isinstance(self._response, httpx.Response), self._response
        return self._response


def names_answering(plane: Plane, host: str, count: int = 6) -> set[str]:
    return {plane.get(host).text.split()[0] for _ in range(count)}


def reloads(plane: Plane) -> int:
    return plane.router.processes().reloads


def test_hosts_route_to_their_service_over_https(
    plane: Plane, backends: dict[str, Backend]
) -> None:
    ensure_service(plane.router, "app", ["app.localhost"])
    ensure_service(plane.router, "blog", ["blog.localhost", "www.example.com"])
    add_server(plane.router, "app", "a1", backends["a1"].address)
    add_server(plane.router, "blog", "b1", backends["b1"].address)
    assert plane.get("app.localhost").text == "a1 host=app.localhost proto=https"
    assert plane.get("blog.localhost").text.startswith("b1 ")
    assert plane.get("WWW.Example.com").text.startswith("b1 ")  # custom domain, own certificate


def test_http_redirects_to_https(plane: Plane) -> None:
    ensure_service(plane.router, "app", ["app.localhost"])
    response = plane.get("app.localhost", "/path?q=1", scheme="http")
    assert response.status_code == 308
    port = plane.settings.https_port
    assert response.headers["location"] == f"https://app.localhost:{port}/path?q=1"


def test_unknown_hosts_get_a_404_page(plane: Plane) -> None:
    response = plane.get("nothing-here.baepo.test")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "No Baepo service answers at this address" in response.text


def test_a_server_added_at_runtime_takes_traffic_without_a_reload(
    plane: Plane, backends: dict[str, Backend]
) -> None:
    ensure_service(plane.router, "app", ["app.localhost"])
    add_server(plane.router, "app", "a", backends["a"].address)
    before = reloads(plane)
    add_server(plane.router, "app", "b", backends["b"].address)
    assert names_answering(plane, "app.localhost") == {"a", "b"}
    assert reloads(plane) == before


def test_drain_lets_requests_finish_and_sends_new_ones_elsewhere(
    plane: Plane, backends: dict[str, Backend]
) -> None:
    router = plane.router
    ensure_service(router, "app", ["app.localhost"])
    add_server(router, "app", "old", backends["old"].address)
    slow = Background(lambda: plane.get("app.localhost", "/slow?seconds=2"))
    wait_until(lambda: in_flight(router, "app")["old"] == 1)
    add_server(router, "app", "new", backends["new"].address)
    drain_server(router, "app", "old")
    assert names_answering(plane, "app.localhost") == {"new"}
    assert in_flight(router, "app")["old"] == 1
    response = slow.result()
    assert (response.status_code, response.text.split()[0]) == (200, "old")
    wait_until(lambda: in_flight(router, "app")["old"] == 0)
    remove_server(router, "app", "old")
    assert [s.name for s in router.service_stats("app").servers] == ["new"]
    assert names_answering(plane, "app.localhost") == {"new"}


def test_a_paused_service_answers_a_paused_page(plane: Plane, backends: dict[str, Backend]) -> None:
    ensure_service(plane.router, "app", ["app.localhost"])
    add_server(plane.router, "app", "a", backends["a"].address)
    set_paused(plane.router, "app", True)
    response = plane.get("app.localhost")
    assert response.status_code == 503
    assert "This service is paused" in response.text
    set_paused(plane.router, "app", False)
    assert plane.get("app.localhost").status_code == 200


def test_a_new_service_reloads_without_cutting_requests_in_flight(
    plane: Plane, backends: dict[str, Backend]
) -> None:
    router = plane.router
    ensure_service(router, "app", ["app.localhost"])
    add_server(router, "app", "a", backends["a"].address)
    slow = Background(lambda: plane.get("app.localhost", "/slow?seconds=2"))
    wait_until(lambda: in_flight(router, "app")["a"] == 1)
    before = reloads(plane)
    ensure_service(router, "new", ["new.localhost"])
    add_server(router, "new", "n", backends["n"].address)
    assert reloads(plane) == before + 1
    # The request now lives in the old worker, and still counts as in flight.
    assert router.processes().old_workers
    assert in_flight(router, "app")["a"] == 1
    assert plane.get("new.localhost").text.startswith("n ")
    assert plane.get("app.localhost").text.startswith("a ")
    assert slow.result().status_code == 200


def test_routes_put_at_once_for_two_new_services_are_both_kept(
    plane: Plane, backends: dict[str, Backend]
) -> None:
    """The reconciler converges services concurrently, and each new service is a reload: the
    second put must not write back a table read before the first one was applied."""
    routes = [
        Route(name, (f"{name}.localhost",), (Server(f"{name}1", backends[name].address),))
        for name in ("aaa", "bbb")
    ]
    threads = [threading.Thread(target=plane.router.put, args=(r,)) for r in routes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(s.name for s in plane.router.table().services) == ["aaa", "bbb"]
    assert plane.get("aaa.localhost").text.startswith("aaa ")
    assert plane.get("bbb.localhost").text.startswith("bbb ")


def test_many_routes_put_at_once_share_reloads_and_a_bad_one_fails_alone(
    plane: Plane, backends: dict[str, Backend]
) -> None:
    """Fifty services changing at once must not cost fifty reloads (each a full `haproxy -c`
    and a new worker): changes queued while one applies go together in the next apply."""
    plane.router.put(Route("owner", ("taken.localhost",)))
    before = plane.router.processes().reloads
    names = [f"svc{n:02d}" for n in range(30)]
    routes = [
        Route(name, (f"{name}.localhost",), (Server(f"{name}a", backends["aaa"].address),))
        for name in names
    ]
    bad = Route("thief", ("taken.localhost",))  # another service's host name
    errors: list[Exception] = []

    def put(route: Route) -> None:
        try:
            plane.router.put(route)
        except RouterError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=put, args=(r,)) for r in [*routes, bad]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(s.name for s in plane.router.table().services) == sorted([*names, "owner"])
    assert len(errors) == 1 and "taken.localhost" in str(errors[0]), errors
    reloads = plane.router.processes().reloads - before
    assert 1 <= reloads < len(names) // 2, reloads
    for name in names[:3] + names[-3:]:
        assert plane.get(f"{name}.localhost").text.startswith("aaa ")


def test_requests_longer_than_a_short_timeout_pass(
    plane: Plane, backends: dict[str, Backend]
) -> None:
    ensure_service(plane.router, "app", ["app.localhost"])
    add_server(plane.router, "app", "a", backends["a"].address)
    assert plane.get("app.localhost", "/slow?seconds=2.5").status_code == 200


def test_a_safe_request_an_instance_resets_unanswered_is_sent_to_another(
    plane: Plane, backends: dict[str, Backend]
) -> None:
    """An instance closing under its requests (its node's dockerd stopping it): a GET it reset
    before answering is answered by another instance; a POST is not repeated (it may have done
    its work): it gets the 502 (or, after another request on its connection, the connection
    closed, which a client may retry, RFC 9112 9.3.1)."""
    resetting = Backend("closing", resets=True)
    try:
        ensure_service(plane.router, "app", ["app.localhost"])
        add_server(plane.router, "app", "closing", resetting.address)
        add_server(plane.router, "app", "good", backends["good"].address)
        for _ in range(12):
            response = plane.get("app.localhost")
            assert (response.status_code, response.text.split()[0]) == (200, "good")
        tried = resetting.requests
        assert tried > 0  # leastconn sent some of them to the closing instance first
        outcomes = {posted(plane) for _ in range(8)}
        assert outcomes - {200} and outcomes <= {200, 502, "closed"}, outcomes
        assert resetting.requests > tried
    finally:
        resetting.close()


def posted(plane: Plane) -> int | str:
    """The status of a POST, or "closed" if the router closed the connection unanswered."""
    try:
        return plane.request("POST", "app.localhost", body=b"x").status_code
    except httpx.RemoteProtocolError:
        return "closed"


def test_requests_beyond_max_concurrency_queue(plane: Plane, backends: dict[str, Backend]) -> None:
    router = plane.router
    ensure_service(router, "app", ["app.localhost"], max_concurrency=1)
    add_server(router, "app", "a", backends["a"].address)
    # Long enough to see both (one served, one queued) on a busy machine.
    first = Background(lambda: plane.get("app.localhost", "/slow?seconds=4"))
    second = Background(lambda: plane.get("app.localhost", "/slow?seconds=0.1"))
    wait_until(
        lambda: (
            (router.service_stats("app").in_flight, router.service_stats("app").queued) == (1, 1)
        )
    )
    assert first.result().status_code == second.result().status_code == 200


def test_load_reads_every_service_in_one_pass(plane: Plane, backends: dict[str, Backend]) -> None:
    router = plane.router
    ensure_service(router, "app", ["app.localhost"], max_concurrency=1)
    add_server(router, "app", "a", backends["a"].address)
    ensure_service(router, "other", ["other.localhost"])
    add_server(router, "other", "b", backends["b"].address)
    for _ in range(3):
        assert plane.get("other.localhost").status_code == 200
    first = Background(lambda: plane.get("app.localhost", "/slow?seconds=4"))
    second = Background(lambda: plane.get("app.localhost", "/slow?seconds=0.1"))
    wait_until(lambda: (router.load()["app"].in_flight, router.load()["app"].queued) == (1, 1))
    load = router.load()
    assert set(load) == {"app", "other"}
    assert load["other"].in_flight == 0 and load["other"].total == 3
    assert load["other"].http_2xx == 3
    assert [s.name for s in load["app"].servers] == ["a"]
    assert first.result().status_code == second.result().status_code == 200
    assert router.load()["app"].total == 2


def test_http2_is_negotiated_with_alpn(plane: Plane, backends: dict[str, Backend]) -> None:
    if not shutil.which("curl"):
        missing("curl is not installed")
    ensure_service(plane.router, "app", ["app.localhost"])
    add_server(plane.router, "app", "a", backends["a"].address)
    port = plane.settings.https_port
    done = subprocess.run(
        [
            "curl", "--silent", "--show-error", "--http2", "--cacert", str(plane.ca_file),
            "--resolve", f"app.localhost:{port}:127.0.0.1",
            "--write-out", " http=%{http_version}",
            f"https://app.localhost:{port}/",
        ],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"a host=app.localhost:{port} proto=https")
    assert done.stdout.endswith(" http=2")


def test_websocket_upgrades_pass(plane: Plane, backends: dict[str, Backend]) -> None:
    ensure_service(plane.router, "app", ["app.localhost"])
    add_server(plane.router, "app", "a", backends["a"].address)
    raw = socket.create_connection(("127.0.0.1", plane.settings.https_port), timeout=10)
    with plane.tls.wrap_socket(raw, server_hostname="app.localhost") as conn:
        conn.sendall(
            b"GET /ws HTTP/1.1\r\nHost: app.localhost\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += conn.recv(4096)
        assert head.startswith(b"HTTP/1.1 101")
        conn.sendall(b"hello\n")
        rest = head.split(b"\r\n\r\n", 1)[1]
        while not rest.endswith(b"\n"):
            rest += conn.recv(4096)
        assert rest == b"echo:hello\n"


def test_a_new_hostname_gets_a_certificate_without_a_reload(
    plane: Plane, backends: dict[str, Backend]
) -> None:
    ensure_service(plane.router, "app", ["app.localhost"])
    add_server(plane.router, "app", "a", backends["a"].address)
    before = reloads(plane)
    ensure_service(plane.router, "app", ["app.localhost", "shop.example.org"])
    assert plane.get("shop.example.org").text.startswith("a ")  # verified against the CA
    assert reloads(plane) == before


def test_a_restarted_baepo_adopts_the_running_haproxy(
    plane: Plane, backends: dict[str, Backend]
) -> None:
    ensure_service(plane.router, "app", ["app.localhost"])
    add_server(plane.router, "app", "a", backends["a"].address)
    pid = plane.router.pid
    table = plane.router.table()
    successor = HAProxyRouter(plane.settings, plane.ca, plane.clock)  # Baepo came back
    successor.start()
    assert successor.pid == pid
    assert successor.table() == table
    add_server(successor, "app", "b", backends["b"].address)
    assert names_answering(plane, "app.localhost") == {"a", "b"}
    plane.router = successor  # the fixture stops the HAProxy it now owns


def test_certificates_without_their_list_start_as_a_restored_data_directory_does(
    plane: Plane,
) -> None:
    """A backup keeps the certificates, not the crt-list that names them by path (the data
    directory may move): a router started on them writes the list again."""
    ensure_service(plane.router, "app", ["app.localhost"])
    plane.router.stop()
    plane.settings.paths.crt_list.unlink()
    plane.router = HAProxyRouter(plane.settings, plane.ca, plane.clock)
    plane.router.start()
    assert plane.get("nothing.baepo.test").status_code == 404  # over TLS, the CA's certificate


@pytest.fixture
def fake_clock_plane() -> Iterator[Plane]:
    directory = Path(tempfile.mkdtemp(prefix="baepo-router-", dir="/tmp"))
    p = Plane(directory, FakeClock())
    p.router.start()
    try:
        yield p
    finally:
        p.close()
        shutil.rmtree(directory, ignore_errors=True)


def test_certificates_are_renewed_before_expiry_at_runtime(
    fake_clock_plane: Plane, backends: dict[str, Backend]
) -> None:
    plane = fake_clock_plane
    assert isinstance(plane.clock, FakeClock)
    ensure_service(plane.router, "app", ["app.localhost"])
    add_server(plane.router, "app", "a", backends["a"].address)
    first = served_certificate(plane, "app.localhost")
    assert plane.router.renew_certificates() == []
    plane.clock.advance(70 * 86400)
    before = reloads(plane)
    # app.localhost is not under the plane's domain: a custom domain, in its own certificate.
    assert plane.router.renew_certificates() == ["default", "svc_app_custom"]
    renewed = served_certificate(plane, "app.localhost")
    assert renewed.serial_number != first.serial_number
    assert renewed.not_valid_after_utc > first.not_valid_after_utc
    assert reloads(plane) == before


class SteppedClock(SystemClock):
    """The wall clock as it is (the certificates stay valid), a monotonic one moved by hand."""

    def __init__(self) -> None:
        self.seconds = 1000.0

    def monotonic(self) -> float:
        return self.seconds


def test_states_reuse_a_reading_under_a_second_old_but_never_one_from_before_a_change(
    backends: dict[str, Backend],
) -> None:
    clock = SteppedClock()
    directory = Path(tempfile.mkdtemp(prefix="baepo-router-", dir="/tmp"))
    plane = Plane(directory, clock)
    plane.router.start()
    try:
        states_reuse_fresh_readings(plane, clock, backends)
    finally:
        plane.close()
        shutil.rmtree(directory, ignore_errors=True)


def states_reuse_fresh_readings(
    plane: Plane, clock: SteppedClock, backends: dict[str, Backend]
) -> None:
    router = plane.router
    ensure_service(router, "app", ["app.localhost"])
    add_server(router, "app", "a", backends["a"].address)
    router.load()  # the sampler's reading of this second
    slow = Background(lambda: plane.get("app.localhost", "/slow?seconds=4"))
    wait_until(lambda: in_flight(router, "app") == {"a": 1})
    # A reconcile pass in the same second takes the sampler's reading: no `show stat` of its own.
    assert router.states()["app"].in_flight == {"a": 0}
    clock.seconds += 1.1
    assert router.states()["app"].in_flight == {"a": 1}
    # A change is seen at once, however fresh the reading before it: a server added at runtime,
    # a service added by a reload.
    add_server(router, "app", "b", backends["b"].address)
    assert router.states()["app"].in_flight == {"a": 1, "b": 0}
    router.load()
    ensure_service(router, "other", ["other.localhost"])
    assert set(router.states()) == {"app", "other"}
    assert slow.result().status_code == 200


def served_certificate(plane: Plane, host: str) -> x509.Certificate:
    context = ssl.create_default_context(cafile=str(plane.ca_file))
    context.check_hostname = False  # the fake clock's certificates are not valid yet or now
    context.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", plane.settings.https_port), timeout=10)
    with context.wrap_socket(raw, server_hostname=host) as conn:
        der = conn.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def test_a_dead_haproxy_is_started_again_on_the_next_change(
    plane: Plane, backends: dict[str, Backend]
) -> None:
    ensure_service(plane.router, "app", ["app.localhost"])
    add_server(plane.router, "app", "a", backends["a"].address)
    pid = plane.router.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # the HAProxy this test's router started
    wait_until(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid))
    add_server(plane.router, "app", "b", backends["b"].address)
    assert plane.router.pid != pid
    assert names_answering(plane, "app.localhost") == {"a", "b"}


def _zombie(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


def test_an_old_worker_that_ends_while_asked_counts_as_done(
    plane: Plane, backends: dict[str, Backend], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Old workers are listed, then asked one by one: one may finish in between (HAProxy then
    answers "Can't find the target PID"), which must not fail the reconciler's read."""
    ensure_service(plane.router, "app", ["app.localhost"])
    add_server(plane.router, "app", "a", backends["a"].address)
    process = plane.router._process
    listed = process.processes()
    monkeypatch.setattr(
        process, "processes", lambda: dataclasses.replace(listed, old_workers=[4_000_000])
    )

    def gone(pid: int, backend: str) -> list[dict[str, str]]:
        raise CommandFailed(
            f"@!{pid} show stat", f"Can't find the target PID matching the prefix '@!{pid}'"
        )

    monkeypatch.setattr(process, "old_worker_stats", gone)
    state = plane.router.get("app")
    assert state is not None and state.in_flight == {"a": 0}
