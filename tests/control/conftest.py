"""Fixtures for the control room: a database, MemoryEngine, MemoryRouter, FakeProber, FakeClock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from baepo.clock import FakeClock
from baepo.control import (
    LogKeeper,
    Quota,
    Reconciler,
    RegistryLink,
    Scaling,
    SecretBox,
    Services,
    Timing,
)
from baepo.control.tables import (
    AutoScalingConfigurationRow,
    CursorRow,
    OperationLogRow,
    OperationRow,
    RevisionRow,
    ServiceEventRow,
    ServiceRow,
)
from baepo.store import Base, Database
from tests.control.fakes import FakeProber, MemoryPushLog
from tests.fakes.engine import FakeImage, MemoryEngine, baepo_test_images
from tests.fakes.router import MemoryRouter

REGISTRY = "localhost:5000"
CREDENTIALS = ("robot", "robot-secret")
TABLES = [r.__table__ for r in (ServiceRow, RevisionRow, OperationRow, OperationLogRow)]
TABLES += [ServiceEventRow.__table__, CursorRow.__table__, AutoScalingConfigurationRow.__table__]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def hello(version: str) -> Callable[[str, Any], tuple[int, str]]:
    def respond(path: str, env: Any) -> tuple[int, str]:
        return 200, f"hello v{version}\n"

    return respond


def app_image(tag: str, **fields: Any) -> FakeImage:
    """An image of `localhost:5000/team/app` in the fake registry (pull needs the robot)."""
    fields.setdefault("respond", hello(tag))
    fields.setdefault("logs", [f"app {tag} listening on :8080"])
    return FakeImage(ref=f"{REGISTRY}/team/app:{tag}", credentials=CREDENTIALS, **fields)


def make_database(path: Path) -> Database:
    return make_database_at(f"sqlite:///{path}")


def make_database_at(url: str) -> Database:
    db = Database(url)
    Base.metadata.create_all(db.engine, tables=TABLES)  # type: ignore[arg-type]
    return db


@dataclass
class World:
    """Everything a control test needs, over one database and one engine."""

    db: Database
    clock: FakeClock
    engine: MemoryEngine
    router: MemoryRouter
    prober: FakeProber
    box: SecretBox
    registry: RegistryLink
    timing: Timing
    reconciler: Reconciler
    services: Services
    pushes: MemoryPushLog
    keeper: LogKeeper

    def new_reconciler(
        self, scaling: Scaling | None = None, quota: Quota | None = None
    ) -> Reconciler:
        """A fresh reconciler over the same database and engine: Baepo after a restart."""
        return Reconciler(
            db=self.db,
            engine=self.engine,
            router=self.router,
            prober=self.prober,
            clock=self.clock,
            secrets=self.box,
            domain="localhost",
            registry=self.registry,
            timing=self.timing,
            pushes=self.pushes,
            logs=self.keeper,
            scaling=scaling,
            quota=quota,
        )

    async def settle(
        self,
        until: Callable[[], bool],
        reconciler: Reconciler | None = None,
        step_s: float = 0.25,
        max_passes: int = 400,
    ) -> int:
        """Run passes, moving the clock `step_s` between them, until `until()`; the count."""
        reconciler = reconciler or self.reconciler
        for count in range(1, max_passes + 1):
            await reconciler.tick()
            if until():
                return count
            self.clock.advance(step_s)
        raise AssertionError(f"not settled after {max_passes} passes")

    def status(self, operation_id: str) -> str:
        return self.services.operation(operation_id).status

    def done(self, operation_id: str) -> Callable[[], bool]:
        return lambda: self.status(operation_id) in ("SUCCEEDED", "FAILED")

    def containers(self, service: str = "app", running: bool | None = None) -> list[Any]:
        found = self.engine.list({"baepo.service": service})
        return [c for c in found if running is None or c.running == running]


@pytest.fixture
def world(tmp_path: Path, database_url: str) -> Iterator[World]:
    clock = FakeClock()
    engine = MemoryEngine(clock, images=baepo_test_images())
    engine.publish(app_image("1"))
    engine.publish(app_image("2"))
    db = make_database_at(database_url)
    router = MemoryRouter()
    prober = FakeProber(engine)
    box = SecretBox(SecretBox.generate_key())
    registry = RegistryLink.of([REGISTRY, "127.0.0.1:5000"], lambda: CREDENTIALS)
    timing = Timing(deploy_timeout_s=60, operation_timeout_s=60, drain_timeout_s=30)
    pushes = MemoryPushLog()
    keeper = LogKeeper(tmp_path / "logs", engine)
    reconciler = Reconciler(
        db=db,
        engine=engine,
        router=router,
        prober=prober,
        clock=clock,
        secrets=box,
        domain="localhost",
        registry=registry,
        timing=timing,
        pushes=pushes,
        logs=keeper,
    )
    services = Services(
        db=db,
        engine=engine,
        secrets=box,
        clock=clock,
        domain="localhost",
        registry=registry,
        reconciler=reconciler,
        logs=keeper,
    )
    yield World(
        db,
        clock,
        engine,
        router,
        prober,
        box,
        registry,
        timing,
        reconciler,
        services,
        pushes,
        keeper,
    )
    engine.close()
    db.dispose()
