"""Fixtures for the runtime room: one `engine` fixture, run as MemoryEngine, as DockerEngine
against dockerd, and as DockerEngine against Podman's Docker-compatible socket.

The Docker and Podman variants are `integration`: a session fixture makes sure an engine answers
(`scripts/engine`, `scripts/podman-engine`) and the test images exist (`scripts/test-images`,
copied into Podman by `scripts/podman-engine`). The Podman variant is skipped where podman is
not installed, and fails there when the real thing is required (tests/components.py). Every
container a test starts carries a label unique to the test and joins a network of the test's
own (`test_network`); teardown removes all containers carrying the label, then every network
carrying it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from baepo.runtime import ContainerNotFound, ContainerSpec, DockerEngine, Engine
from tests.components import missing
from tests.fakes.engine import MemoryEngine, baepo_test_images

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def podman_host(docker_host: str) -> str:
    """Podman's Docker-compatible socket (`scripts/podman-engine`), holding the test images."""
    if shutil.which("podman") is None:
        missing("podman is not installed (apt install podman runc)")
    podman = subprocess.run(
        [str(ROOT / "scripts" / "podman-engine")],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "BAEPO_DOCKER_HOST": docker_host},
    )
    if podman.returncode != 0:
        pytest.fail(f"scripts/podman-engine failed:\n{podman.stdout}\n{podman.stderr}")
    return podman.stdout.strip().splitlines()[-1]


@pytest.fixture
def run_labels() -> dict[str, str]:
    """Labels unique to this test: every container it starts carries them."""
    return {"baepo.test.run": uuid.uuid4().hex}


@pytest.fixture(
    params=[
        "memory",
        pytest.param("docker", marks=pytest.mark.integration),
        pytest.param("podman", marks=pytest.mark.integration),
    ]
)
def engine(request: pytest.FixtureRequest, run_labels: dict[str, str]) -> Iterator[Engine]:
    if request.param == "memory":
        memory = MemoryEngine(images=baepo_test_images())
        yield memory
        memory.close()
        return
    docker_engine = DockerEngine(request.getfixturevalue(f"{request.param}_host"))
    yield docker_engine
    for instance in docker_engine.list(run_labels):
        with contextlib.suppress(ContainerNotFound):
            docker_engine.remove(instance.id)
    for network in docker_engine.networks(run_labels):
        docker_engine.remove_network(network.name)
    docker_engine.close()


@pytest.fixture
def test_network(engine: Engine, run_labels: dict[str, str]) -> str:
    """A network of this test's own (removed by the `engine` fixture's teardown)."""
    name = f"baepo-test-{run_labels['baepo.test.run'][:12]}"
    return engine.ensure_network(name, run_labels).name


@pytest.fixture
def spec(run_labels: dict[str, str], test_network: str) -> Callable[..., ContainerSpec]:
    """`spec(image, **fields)`: a ContainerSpec carrying the test's labels and a unique name,
    on the test's network."""
    prefix = f"baepo-test-{run_labels['baepo.test.run'][:10]}"
    counter = iter(range(1_000_000))

    def make(image: str, **fields: Any) -> ContainerSpec:
        labels = {**fields.pop("labels", {}), **run_labels}
        fields.setdefault("name", f"{prefix}-{next(counter)}")
        fields.setdefault("network", test_network)
        return ContainerSpec(image=image, labels=labels, **fields)

    return make
