"""Fixtures of the router room: a real HAProxy on free loopback ports, and a client for it."""

from __future__ import annotations

import shutil
import socket
import ssl
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from baepo.clock import Clock, SystemClock
from baepo.router import HAProxyRouter, LocalCA, RouterSettings
from tests.components import missing
from tests.router.backends import Backend

HAPROXY = "/usr/sbin/haproxy"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Plane:
    """A started `HAProxyRouter` and the means to send it requests as a browser would."""

    def __init__(
        self, directory: Path, clock: Clock | None = None, **settings: str | int | None
    ) -> None:
        self.directory = directory
        self.clock = clock or SystemClock()
        self.ca = LocalCA(directory / "ca", self.clock)
        self.settings = RouterSettings(
            state_dir=directory / "router",
            domain="baepo.test",  # a wildcard needs two labels: clients refuse *.localhost
            http_port=free_port(),
            https_port=free_port(),
            bind_address="127.0.0.1",
            haproxy_binary=HAPROXY,
            **settings,  # type: ignore[arg-type]
        )
        self.router = HAProxyRouter(self.settings, self.ca, self.clock)
        self.ca_file = directory / "ca.pem"
        self.ca_file.write_text(self.ca.ca_pem())
        self.tls = ssl.create_default_context(cafile=str(self.ca_file))
        self.client = httpx.Client(verify=self.tls, timeout=30)

    def get(
        self, host: str, path: str = "/", scheme: str = "https", timeout: float = 30
    ) -> httpx.Response:
        return self.request("GET", host, path, scheme=scheme, timeout=timeout)

    def request(
        self,
        method: str,
        host: str,
        path: str = "/",
        *,
        body: bytes | None = None,
        scheme: str = "https",
        timeout: float = 30,
    ) -> httpx.Response:
        port = self.settings.https_port if scheme == "https" else self.settings.http_port
        return self.client.request(
            method,
            f"{scheme}://127.0.0.1:{port}{path}",
            headers={"Host": host},
            content=body,
            extensions={"sni_hostname": host},
            timeout=timeout,
        )

    def close(self) -> None:
        self.client.close()
        self.router.stop()


@pytest.fixture
def plane() -> Iterator[Plane]:
    if not shutil.which(HAPROXY):
        missing("HAProxy is not installed (apt install haproxy)")
    # Unix socket paths are short; pytest's tmp_path can be too deep for them.
    directory = Path(tempfile.mkdtemp(prefix="baepo-router-", dir="/tmp"))
    p = Plane(directory)
    p.router.start()
    try:
        yield p
    finally:
        p.close()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def backends() -> Iterator[dict[str, Backend]]:
    made: dict[str, Backend] = {}

    class Factory(dict[str, Backend]):
        def __missing__(self, name: str) -> Backend:
            made[name] = self[name] = Backend(name)
            return made[name]

    yield Factory()
    for backend in made.values():
        backend.close()
