"""Baepo's registry and API over HTTPS at `registry.<domain>`, through the router.

A Python backend stands in for Baepo's API; what is checked is what a docker client on another
machine meets: the router's certificate for the registry host, the forwarded scheme, the
redirect from HTTP, the shield against slow requests, and that no service can take the name.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from baepo.router import InvalidRoute, RouterSettings, render_config
from baepo.router.table import Route, RoutingTable
from tests.components import missing
from tests.router.backends import Backend
from tests.router.conftest import HAPROXY, Plane
from tests.router.routes import add_server, ensure_service

REGISTRY = "registry.baepo.test"


def test_the_registry_host_goes_to_the_api_before_any_service() -> None:
    settings = RouterSettings(
        state_dir=Path("/var/lib/baepo/router"),
        registry_hostname=REGISTRY,
        registry_address="127.0.0.1:5000",
    )
    config = render_config(RoutingTable((Route("app", ("app.baepo.test",)),)), settings)
    https = config.split("frontend https\n", 1)[1].split("\n\n", 1)[0]
    rules = [line.strip() for line in https.splitlines() if "use_backend" in line]
    assert rules[0] == "use_backend baepo_registry if baepo_registry"
    assert "map(" in rules[1]
    backend = config.split("backend baepo_registry\n", 1)[1].split("\n\n", 1)[0]
    assert "server api 127.0.0.1:5000" in backend and "option http-buffer-request" in backend
    http = config.split("frontend http\n", 1)[1].split("\n\n", 1)[0]
    assert "|| baepo_registry" in http  # redirected to HTTPS too


def test_without_a_registry_host_nothing_is_rendered_for_it() -> None:
    config = render_config(RoutingTable(), RouterSettings(state_dir=Path("/x")))
    assert "baepo_registry" not in config


@pytest.fixture
def api() -> Iterator[Backend]:
    backend = Backend("api")
    yield backend
    backend.close()


@pytest.fixture
def registry_plane(api: Backend) -> Iterator[Plane]:
    if not shutil.which(HAPROXY):
        missing("HAProxy is not installed")
    directory = Path(tempfile.mkdtemp(prefix="baepo-router-", dir="/tmp"))
    p = Plane(
        directory,
        registry_hostname=REGISTRY,
        registry_address=api.address,
        timeout_http_request_s=1,
    )
    p.router.start()
    try:
        yield p
    finally:
        p.close()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.integration
def test_the_registry_answers_over_https_with_a_certificate_for_its_name(
    registry_plane: Plane, api: Backend
) -> None:
    r = registry_plane.get(REGISTRY, "/v2/")  # verified against the local CA, SNI = the host
    assert r.status_code == 200
    assert r.text.startswith("api ") and "proto=https" in r.text
    assert f"host={REGISTRY}" in r.text
    redirect = registry_plane.get(REGISTRY, "/v2/", scheme="http")
    assert redirect.status_code == 308
    port = registry_plane.settings.https_port
    assert redirect.headers["location"] == f"https://{REGISTRY}:{port}/v2/"


@pytest.mark.integration
def test_no_service_can_take_the_registry_host(registry_plane: Plane, api: Backend) -> None:
    with pytest.raises(InvalidRoute, match="registry"):
        ensure_service(registry_plane.router, "registry", [REGISTRY])
    with pytest.raises(InvalidRoute, match="registry"):  # nor as a custom domain
        ensure_service(registry_plane.router, "app", ["app.baepo.test", REGISTRY])
    assert registry_plane.router.table().services == ()
    assert registry_plane.get(REGISTRY, "/v2/").text.startswith("api ")


@pytest.mark.integration
@pytest.mark.parametrize(
    "sent",
    [
        f"GET /v2/ HTTP/1.1\r\nHost: {REGISTRY}\r\nX-Slow: ",  # headers that never end
        f"POST /auth/token HTTP/1.1\r\nHost: {REGISTRY}\r\nContent-Length: 100\r\n\r\nab",
    ],
    ids=["headers", "body"],
)
def test_a_half_sent_request_is_cut_off_before_the_api(
    registry_plane: Plane, api: Backend, sent: str
) -> None:
    context = ssl.create_default_context(cafile=str(registry_plane.ca_file))
    raw = socket.create_connection(("127.0.0.1", registry_plane.settings.https_port), timeout=30)
    with context.wrap_socket(raw, server_hostname=REGISTRY) as conn:
        conn.sendall(sent.encode())
        answer = b""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # HAProxy answers 408 and closes
            chunk = conn.recv(4096)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    assert api.requests == 0


@pytest.mark.integration
def test_a_table_saved_before_the_registry_took_its_host_still_starts(
    api: Backend, backends: dict[str, Backend]
) -> None:
    """An older Baepo's saved routes with a service at the registry's host: the router starts,
    the registry wins that host, and other services' changes still apply."""
    if not shutil.which(HAPROXY):
        missing("HAProxy is not installed")
    directory = Path(tempfile.mkdtemp(prefix="baepo-router-", dir="/tmp"))
    old = Plane(directory)  # an older Baepo: no registry host
    old.router.start()
    ensure_service(old.router, "registry", [REGISTRY])
    add_server(old.router, "registry", "r", backends["r"].address)
    old.client.close()  # the older Baepo stops; its HAProxy keeps running, to be adopted
    new = Plane(directory, registry_hostname=REGISTRY, registry_address=api.address)
    try:
        new.router.start()
        ensure_service(new.router, "app", ["app.baepo.test"])
        add_server(new.router, "app", "a", backends["a"].address)
        assert new.get("app.baepo.test").text.startswith("a ")
        assert new.get(REGISTRY, "/v2/").text.startswith("api ")
    finally:
        new.close()
        old.router.stop()  # if the new one never adopted it
        shutil.rmtree(directory, ignore_errors=True)
