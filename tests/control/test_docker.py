"""The reconciler against a real Docker engine, real containers and real HTTP health checks.

The data plane is still `MemoryRouter` (the HAProxy end-to-end tests are the lead's); what is
real here is everything the control room touches itself: pulls (that fail over to local test
images), container starts with labels, `/healthz` probes over TCP and HTTP, log tails of a
broken container, SIGTERM/SIGKILL stops, and adoption by a second reconciler.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from baepo.clock import SystemClock
from baepo.control import NetworkProber, Reconciler, SecretBox, Services, SpecChange, Timing
from baepo.control.instances import LABEL_INSTALLATION
from baepo.runtime import ContainerNotFound, DockerEngine, Instance
from tests.control.conftest import make_database
from tests.fakes.router import MemoryRouter

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

HEALTHZ = {"protocol": "http", "path": "/healthz", "interval": 1, "timeout": 1}


@dataclass
class Real:
    engine: DockerEngine
    box: SecretBox
    router: MemoryRouter
    reconciler: Reconciler
    services: Services
    make_reconciler: Callable[[], Reconciler]

    def containers(self, service: str) -> list[Instance]:
        labels = {LABEL_INSTALLATION: self.box.fingerprint, "baepo.service": service}
        return self.engine.list(labels)

    async def settle(
        self, until: Callable[[], bool], reconciler: Reconciler | None = None, timeout_s: float = 60
    ) -> None:
        reconciler = reconciler or self.reconciler
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            await reconciler.tick()
            if until():
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"not settled within {timeout_s} s")

    def done(self, operation_id: str) -> Callable[[], bool]:
        return lambda: self.services.operation(operation_id).status in ("SUCCEEDED", "FAILED")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def engine(docker_host: str) -> Iterator[DockerEngine]:
    engine = DockerEngine(docker_host)
    yield engine
    engine.close()


@pytest.fixture
async def real(tmp_path: Path, engine: DockerEngine) -> AsyncIterator[Real]:
    clock = SystemClock()
    db = make_database(tmp_path / "control.db")
    box = SecretBox(SecretBox.generate_key())
    router = MemoryRouter()
    prober = NetworkProber()
    timing = Timing(deploy_timeout_s=15, poll_s=0.1, stop_timeout_s=2)

    def make() -> Reconciler:
        return Reconciler(
            db=db, engine=engine, router=router, prober=prober, clock=clock, secrets=box,
            domain="localhost", timing=timing,
        )  # fmt: skip

    reconciler = make()
    services = Services(
        db=db, engine=engine, secrets=box, clock=clock, domain="localhost",
        reconciler=reconciler,
    )  # fmt: skip
    yield Real(engine, box, router, reconciler, services, make)
    for container in engine.list({LABEL_INSTALLATION: box.fingerprint}):
        with contextlib.suppress(ContainerNotFound):
            engine.remove(container.id)
    for network in engine.networks({LABEL_INSTALLATION: box.fingerprint}):
        engine.remove_network(network.name)
    db.dispose()


def answer(instance: Instance) -> str:
    return httpx.get(f"{instance.url}/", timeout=5).text


async def test_create_then_deploy_with_zero_downtime_on_a_real_engine(real: Real) -> None:
    _, create = real.services.create(
        SpecChange({"name": "hello", "image": "baepo-test/hello:1", "health_check": HEALTHZ})
    )
    await real.settle(real.done(create.id))
    assert real.services.operation(create.id).status == "SUCCEEDED"
    (v1,) = real.containers("hello")
    assert answer(v1).startswith("hello v1")

    deploy = real.services.deploy("hello", image="baepo-test/hello:2")
    await real.settle(real.done(deploy.id))
    result = real.services.operation(deploy.id)
    assert result.status == "SUCCEEDED", result.log
    (v2,) = real.containers("hello")
    assert v2.id != v1.id and answer(v2).startswith("hello v2")
    assert real.router.ready("hello") == {v2.labels["baepo.instance"]}
    assert any("GET /healthz answered HTTP 200" in line.line for line in result.log)


async def test_a_broken_revision_fails_with_its_logs_and_the_old_one_serves(real: Real) -> None:
    _, create = real.services.create(
        SpecChange({"name": "broken-demo", "image": "baepo-test/hello:1", "health_check": HEALTHZ})
    )
    await real.settle(real.done(create.id))
    (v1,) = real.containers("broken-demo")
    deploy = real.services.deploy("broken-demo", image="baepo-test/broken:1")
    await real.settle(real.done(deploy.id))
    result = real.services.operation(deploy.id)
    assert result.status == "FAILED"
    assert "did not pass its health check (HTTP GET /healthz) within 15 s" in result.message
    log = "\n".join(line.line for line in result.log)
    assert "broken: refusing to listen on :8080" in log
    await real.settle(lambda: len(real.containers("broken-demo")) == 1)
    assert real.containers("broken-demo")[0].id == v1.id
    assert answer(v1).startswith("hello v1")


async def test_a_crashing_revision_fails_fast_with_its_logs(real: Real) -> None:
    _, create = real.services.create(
        SpecChange({"name": "crash-demo", "image": "baepo-test/crash:1"})
    )
    await real.settle(real.done(create.id))
    result = real.services.operation(create.id)
    assert result.status == "FAILED"
    assert "exited with code 1" in result.message
    assert "crash: cannot start" in "\n".join(line.line for line in result.log)
    assert real.services.describe("crash-demo").status == "CREATE_FAILED"
    await real.settle(lambda: real.containers("crash-demo") == [])


async def test_a_restarted_reconciler_adopts_real_containers(real: Real) -> None:
    _, create = real.services.create(
        SpecChange({"name": "adopt-demo", "image": "baepo-test/hello:1"})
    )
    await real.settle(real.done(create.id))
    (running,) = real.containers("adopt-demo")
    second = real.make_reconciler()
    for _ in range(5):
        await second.tick()
    assert real.containers("adopt-demo") == [running]

    real.engine.stop(running.id, 1)  # dies behind Baepo's back
    await real.settle(
        lambda: (
            any(c.running for c in real.containers("adopt-demo"))
            and len(real.containers("adopt-demo")) == 1
        ),
        reconciler=second,
    )
    assert [e.kind for e in real.services.events("adopt-demo")] == ["crashed"]
