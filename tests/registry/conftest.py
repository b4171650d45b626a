"""Fixtures for the registry room: a Registry on a real SQLite file and filesystem driver,
and its ASGI app behind a gate that allows everything (or one a test configures).

A test module that sets `EVERY_DRIVER = True` runs each of its tests that store blobs twice:
on the filesystem and on S3 (a real server, tests/s3server.py, a bucket per test), except the
tests marked `filesystem_only` (they look at files on disk)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from starlette.types import ASGIApp

import baepo.registry.tables  # noqa: F401 - declares the tables before migrate()
from baepo.auth.access import Access, Principal
from baepo.auth.errors import AccessDenied, AuthenticationRequired
from baepo.clock import FakeClock
from baepo.events import EventBus, ImagePushed
from baepo.registry import Registry, create_app
from baepo.storage import FilesystemDriver, S3Driver, S3Settings, StorageDriver
from baepo.storage.s3 import MIN_PART
from baepo.store import Database
from tests.s3server import ACCESS_KEY, SECRET_KEY, S3Server


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "filesystem_only: runs on the filesystem driver only")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if (
        getattr(metafunc.module, "EVERY_DRIVER", False)
        and "driver" in metafunc.fixturenames
        and metafunc.definition.get_closest_marker("filesystem_only") is None
    ):
        metafunc.parametrize("driver", ["filesystem", "s3"], indirect=True)


class AllowAll:
    """A gate that lets everyone do everything, as user `tester`."""

    def authorize(
        self,
        authorization: str | None,
        wanted: Access,
        *,
        public: bool = False,
        address: str | None = None,
    ) -> Principal:
        return Principal("tester", True, (wanted,))

    def may_pull(self, principal: Principal, repository: str, *, public: bool) -> bool:
        return True

    def challenge(self, base_url: str, wanted: Access | None, *more: Access) -> str:
        scopes = " ".join(a.scope() for a in (wanted, *more) if a is not None and a.actions)
        scope = f',scope="{scopes}"' if scopes else ""
        return f'Bearer realm="{base_url}/auth/token",service="test"{scope}'


@dataclass
class TableGate(AllowAll):
    """Callers are `Basic <user>` headers (no password); `rights` maps a user to the scopes
    it holds. Anonymous callers may only pull public repositories."""

    rights: dict[str, set[str]] = field(default_factory=dict)
    calls: list[tuple[str | None, Access, bool]] = field(default_factory=list)

    def authorize(
        self,
        authorization: str | None,
        wanted: Access,
        *,
        public: bool = False,
        address: str | None = None,
    ) -> Principal:
        self.calls.append((authorization, wanted, public))
        user = authorization.removeprefix("Basic ") if authorization else None
        if user is None or user not in self.rights:
            if public and wanted.actions <= {"pull"}:
                return Principal("")
            raise AuthenticationRequired("authentication required", wanted)
        if not wanted.actions:
            return Principal(user)
        held = self.rights[user]
        if all(f"{wanted.type}:{wanted.name}:{a}" in held for a in wanted.actions):
            return Principal(user, False, (wanted,))
        raise AccessDenied("denied", wanted)

    def may_pull(self, principal: Principal, repository: str, *, public: bool) -> bool:
        held = self.rights.get(principal.subject, set())
        return public or f"repository:{repository}:pull" in held


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC))


@pytest.fixture
def db(state_db: Database) -> Database:
    return state_db


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


@pytest.fixture
def pushed(bus: EventBus) -> list[ImagePushed]:
    events: list[ImagePushed] = []
    bus.subscribe(ImagePushed, events.append)
    return events


@pytest.fixture
def driver(request: pytest.FixtureRequest, tmp_path: Path) -> StorageDriver:
    if getattr(request, "param", "filesystem") == "s3":
        server: S3Server = request.getfixturevalue("s3_server")
        settings = S3Settings(
            server.bucket(),
            server.endpoint,
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            part_size=MIN_PART,  # the smallest parts: a few MiB cross part boundaries
        )
        return S3Driver.connect(settings)
    return FilesystemDriver(tmp_path / "blobs")


@pytest.fixture
def registry(db: Database, driver: StorageDriver, bus: EventBus, clock: FakeClock) -> Registry:
    # Holds taken as by one of several processes on one database, on either dialect.
    return Registry(db=db, driver=driver, bus=bus, clock=clock, process="tests")


class AppClient:
    """A synchronous httpx client for an ASGI app, run on an event loop in another thread."""

    def __init__(
        self, portal: BlockingPortal, app: ASGIApp, headers: dict[str, str] | None = None
    ) -> None:
        self._portal = portal
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://registry.test",
            headers=headers,
        )

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        call = functools.partial(self._client.request, method, url, **kwargs)
        return self._portal.call(call)

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("HEAD", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)

    def close(self) -> None:
        self._portal.call(self._client.aclose)


@pytest.fixture
def portal() -> Iterator[BlockingPortal]:
    with start_blocking_portal() as p:
        yield p


@pytest.fixture
def make_client(portal: BlockingPortal) -> Iterator[Any]:
    made: list[AppClient] = []

    def make(app: ASGIApp, headers: dict[str, str] | None = None) -> AppClient:
        made.append(AppClient(portal, app, headers))
        return made[-1]

    yield make
    for c in made:
        c.close()


@pytest.fixture
def client(registry: Registry, make_client: Any) -> AppClient:
    return make_client(create_app(registry, AllowAll()))  # type: ignore[no-any-return]
