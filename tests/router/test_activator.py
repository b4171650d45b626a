"""The activator in the real data plane: a request to a service with no ready server is held
until one is, and Baepo is told (once a second, not once per request) that requests wait.

A real HAProxy with `activator.lua`, real HTTPS clients, and a loopback listener standing in
for Baepo's internal endpoint (it records what the activator posts).
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from baepo.keyfiles import write_private
from baepo.router.configuration import ACTIVATE_PATH
from tests.components import missing
from tests.router.backends import Backend
from tests.router.conftest import HAPROXY, Plane
from tests.router.routes import add_server, drain_server, ensure_service
from tests.router.test_haproxy import Background, wait_until

pytestmark = pytest.mark.integration

TOKEN = "s3cret-activation-token"


class Activations:
    """Baepo's side, recorded: the path and authorization of each POST."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, str]] = []
        lock = threading.Lock()
        posts = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                with lock:
                    posts.append((self.path, self.headers.get("authorization", "")))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def activations() -> Iterator[Activations]:
    recorder = Activations()
    yield recorder
    recorder.close()


def activating_plane(
    directory: Path, activations: Activations, **settings: str | int | None
) -> Plane:
    token_file = directory / "activator.token"
    write_private(token_file, f"{TOKEN}\n".encode())
    settings |= {"activator_address": activations.address, "activator_token_file": str(token_file)}
    plane = Plane(directory, None, **settings)
    plane.router.start()
    return plane


@pytest.fixture
def planes() -> Iterator[list[Plane]]:
    if not shutil.which(HAPROXY):
        missing("HAProxy is not installed (apt install haproxy)")
    made: list[Plane] = []
    yield made
    for plane in made:
        plane.close()
        shutil.rmtree(plane.directory, ignore_errors=True)


def new_directory() -> Path:
    return Path(tempfile.mkdtemp(prefix="baepo-router-", dir="/tmp"))


def test_a_request_at_zero_is_held_until_a_server_is_ready_and_baepo_is_told(
    planes: list[Plane], activations: Activations, backends: dict[str, Backend]
) -> None:
    # Short router timeouts: the hold outlasts them (it is bounded by its own wait only).
    plane = activating_plane(
        new_directory(), activations, timeout_http_request_s=1, timeout_queue_s=1
    )
    planes.append(plane)
    ensure_service(plane.router, "app", ["app.localhost"])
    held = [Background(lambda: plane.get("app.localhost", "/hello")) for _ in range(10)]
    # Told about once a second while requests wait: two posts mean a hold past the timeouts.
    wait_until(lambda: len(activations.posts) >= 2, timeout=15)
    assert set(activations.posts) == {(f"{ACTIVATE_PATH}?service=app", f"Bearer {TOKEN}")}
    told = len(activations.posts)
    assert told < 10, "ten requests held together are one notice a second, not ten"
    add_server(plane.router, "app", "a", backends["a"].address)
    for request in held:
        response = request.result()
        assert (response.status_code, response.text.split()[0]) == (200, "a")


def test_a_draining_server_does_not_release_a_held_request(
    planes: list[Plane], activations: Activations, backends: dict[str, Backend]
) -> None:
    plane = activating_plane(new_directory(), activations)
    planes.append(plane)
    ensure_service(plane.router, "app", ["app.localhost"])
    add_server(plane.router, "app", "old", backends["old"].address)
    drain_server(plane.router, "app", "old")
    held = Background(lambda: plane.get("app.localhost"))
    wait_until(lambda: len(activations.posts) >= 1)
    add_server(plane.router, "app", "new", backends["new"].address)
    response = held.result()
    assert (response.status_code, response.text.split()[0]) == (200, "new")


def test_a_request_held_across_a_reload_is_served_by_a_server_added_after_it(
    planes: list[Plane], activations: Activations, backends: dict[str, Backend]
) -> None:
    # The old worker never learns of servers added after the reload: it hands the requests it
    # holds to the new worker (its handoff server), which holds them until the server is there.
    plane = activating_plane(new_directory(), activations)
    planes.append(plane)
    ensure_service(plane.router, "app", ["app.localhost"])
    held = [Background(lambda: plane.get("app.localhost", "/forwarded-for?x=1")) for _ in range(5)]
    wait_until(lambda: len(activations.posts) >= 1)
    reloads = plane.router.processes().reloads
    ensure_service(plane.router, "other", ["other.localhost"])  # a new backend: a reload
    assert plane.router.processes().reloads > reloads
    wait_until(lambda: len(activations.posts) >= 2)  # the new worker holds them now
    add_server(plane.router, "app", "a", backends["a"].address)
    for request in held:
        response = request.result()
        # Served by the server added after the reload; forwarded for the client only.
        assert (response.status_code, response.text) == (200, "a 127.0.0.1")
    assert "baepo_handoff" not in [s.name for s in plane.router.service_stats("app").servers]
    assert plane.router.get("app") is not None


def test_a_request_held_past_the_wait_limit_gets_503_with_retry_after(
    planes: list[Plane], activations: Activations
) -> None:
    plane = activating_plane(new_directory(), activations, activator_wait_s=1)
    planes.append(plane)
    ensure_service(plane.router, "app", ["app.localhost"])
    response = plane.get("app.localhost")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert "No instance of this service started in time" in response.text
    assert activations.posts, "Baepo was told before the request gave up"


def test_without_baepo_behind_it_the_activator_only_holds(planes: list[Plane]) -> None:
    plane = Plane(new_directory(), activator_wait_s=1)
    plane.router.start()
    planes.append(plane)
    ensure_service(plane.router, "app", ["app.localhost"])
    response = plane.get("app.localhost")
    assert (response.status_code, response.headers["retry-after"]) == (503, "5")


def test_a_baepo_that_never_answers_does_not_hold_a_request_past_its_limit(
    planes: list[Plane],
) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # connections are accepted by the kernel and never answered
    try:
        token_file = (directory := new_directory()) / "activator.token"
        write_private(token_file, f"{TOKEN}\n".encode())
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        plane = Plane(
            directory,
            activator_address=address,
            activator_token_file=str(token_file),
            activator_wait_s=1,
        )
        plane.router.start()
        planes.append(plane)
        ensure_service(plane.router, "app", ["app.localhost"])
        response = plane.get("app.localhost", timeout=15)
        assert (response.status_code, response.headers["retry-after"]) == (503, "5")
    finally:
        silent.close()
