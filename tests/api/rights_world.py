"""An in-process Baepo API over memory fakes, with users and tokens for the rights matrix.

The real API app (`create_api`), auth room, registry (memory storage) and control facade over
one SQLite database; the engine is a `MemoryEngine`, the data plane the control room's fakes,
time a `FakeClock`, so the reconciler settles an operation in a few passes without sleeping.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute

from baepo.api.app import create_api
from baepo.auth import AccessKeys, Auth
from baepo.clock import FakeClock
from baepo.control import (
    Reconciler,
    RegistryLink,
    SecretBox,
    Services,
    Timing,
)
from baepo.events import EventBus
from baepo.metrics import MetricsStore
from baepo.registry import Registry
from baepo.router import LocalCA
from baepo.schema import schema
from baepo.storage.memory import MemoryDriver
from baepo.store import Database
from tests.control.fakes import FakeProber
from tests.fakes.engine import FakeImage, MemoryEngine, baepo_test_images
from tests.fakes.router import MemoryRouter

REGISTRY = "localhost:5000"
ROBOT = ("robot", "robot-secret")
PASSWORDS = {"admin": "admin-password-1", "alice": "alice-password-1", "bob": "bob-password-1"}


def image(ref: str) -> FakeImage:
    return FakeImage(ref=ref, credentials=ROBOT, respond=lambda path, env: (200, "ok\n"))


def basic(user: str) -> dict[str, str]:
    value = base64.b64encode(f"{user}:{PASSWORDS[user]}".encode()).decode()
    return {"Authorization": f"Basic {value}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class NoDns:
    """A resolver for tests: names it was told, and no DNS."""

    def __init__(self) -> None:
        self.names: dict[str, tuple[str, ...]] = {}
        self.asked: list[str] = []

    def __call__(self, host: str) -> tuple[str, ...]:
        self.asked.append(host)
        if host in self.names:
            return self.names[host]
        raise OSError(f"{host}: no such name (test resolver)")


@dataclass
class RightsWorld:
    db: Database
    clock: FakeClock
    engine: MemoryEngine
    auth: Auth
    registry: Registry
    services: Services
    reconciler: Reconciler
    client: TestClient
    resolver: NoDns
    metrics: MetricsStore
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    """Caller name → the headers it signs in with (no entry: anonymous)."""

    def as_(self, who: str) -> dict[str, str]:
        return self.headers.get(who, {})

    def request(
        self, who: str, method: str, path: str, body: object | None = None
    ) -> httpx.Response:
        answer: httpx.Response = self.client.request(method, path, json=body, headers=self.as_(who))
        return answer

    def settle(self, operation_id: str) -> str:
        """Run the reconciler until the operation ends; its status."""

        async def run() -> str:
            for _ in range(400):
                await self.reconciler.tick()
                status = self.services.operation(operation_id).status
                if status in ("SUCCEEDED", "FAILED"):
                    return status
                self.clock.advance(0.25)
            raise AssertionError(f"operation {operation_id} did not end")

        return asyncio.run(run())

    def token(self, user: str, name: str, **limits: tuple[str, ...]) -> str:
        made = self.auth.create_token(user, name, **limits)
        assert made.secret is not None
        return made.secret


def build(tmp_path: Path, routes: Sequence[BaseRoute] = ()) -> Iterator[RightsWorld]:
    """The world; `routes` are more edges of the app (the console's)."""
    clock = FakeClock()
    db = Database(f"sqlite:///{tmp_path / 'baepo.db'}")
    db.migrate(schema())
    auth = Auth(db, b"k" * 32, clock)
    auth.ensure_admin(PASSWORDS["admin"])
    auth.create_user("alice", PASSWORDS["alice"])
    auth.create_user("bob", PASSWORDS["bob"])
    registry = Registry(db=db, driver=MemoryDriver(), bus=EventBus(), clock=clock)
    engine = MemoryEngine(clock, images=baepo_test_images())
    for ref in ("alice/app:1", "alice/app:2", "bob/app:1", "team/app:1", "alice/private:1"):
        engine.publish(image(f"{REGISTRY}/{ref}"))
    box = SecretBox(SecretBox.generate_key())
    link = RegistryLink.of([REGISTRY, "127.0.0.1:5000"], lambda: ROBOT)
    timing = Timing(deploy_timeout_s=60, operation_timeout_s=60, drain_timeout_s=30)
    reconciler = Reconciler(
        db=db,
        engine=engine,
        router=MemoryRouter(),
        prober=FakeProber(engine),
        clock=clock,
        secrets=box,
        domain="localhost",
        registry=link,
        timing=timing,
    )
    services = Services(
        db=db,
        engine=engine,
        secrets=box,
        clock=clock,
        domain="localhost",
        registry=link,
        reconciler=reconciler,
    )
    resolver = NoDns()
    metrics = MetricsStore(clock)
    ca = LocalCA(tmp_path / "ca", clock)
    api = create_api(
        auth,
        registry,
        services,
        ca,
        resolver=resolver,
        metrics=metrics,
        access_keys=AccessKeys(db, box, clock),
        routes=routes,
    )
    with TestClient(api, base_url="http://127.0.0.1") as client:
        world = RightsWorld(
            db, clock, engine, auth, registry, services, reconciler, client, resolver, metrics
        )
        yield world
    engine.close()
    db.dispose()
