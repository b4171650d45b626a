"""Fixtures for the runtime room: one `engine` fixture, run as MemoryEngine, as DockerEngine
against dockerd, and as DockerEngine against Podman's Docker-compatible socket (the engine
conformance suite also as SwarmEngine on the test swarm: `engine_of`, and the `swarm_*`
fixtures at the end).

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
import functools
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from baepo.runtime import (
    ContainerConflict,
    ContainerNotFound,
    ContainerSpec,
    DockerEngine,
    Edge,
    Engine,
    SwarmEngine,
)
from tests.components import missing
from tests.conftest import free_port
from tests.fakes.engine import MemoryEngine, baepo_test_images
from tests.runtime.registries import distribution
from tests.runtime.waiting import eventually
from tests.swarm_cluster import HOST_ADDRESS, WORKER_ENGINES

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
    yield from engine_of(request, run_labels)


def engine_of(request: pytest.FixtureRequest, run_labels: dict[str, str]) -> Iterator[Engine]:
    """The engine `request.param` names; afterwards, what the test left on it is removed."""
    if request.param == "memory":
        memory = MemoryEngine(images=baepo_test_images())
        yield memory
        memory.close()
        return
    made: DockerEngine | SwarmEngine
    if request.param == "swarm":
        edge: Edge = request.getfixturevalue("swarm_edge")
        # A short grace period: the suite stops an app that ignores SIGTERM.
        made = SwarmEngine(
            request.getfixturevalue("swarm_manager"),
            edge=edge,
            start_timeout_s=120,
            stop_grace_s=2,
            poll_s=0.2,
            node_engines=WORKER_ENGINES,
        )
    else:
        made = DockerEngine(request.getfixturevalue(f"{request.param}_host"))
    yield made
    remove_all(made, run_labels)
    made.close()


def remove_all(engine: Engine, labels: dict[str, str]) -> None:
    """The instances, then the networks, carrying `labels`."""
    for instance in engine.list(labels):
        with contextlib.suppress(ContainerNotFound):
            engine.remove(instance.id)
    for network in engine.networks(labels):
        # A swarm's task endpoints leave a network a moment after their services.
        eventually(functools.partial(network_removed, engine, network.name), 60, "network removed")


def network_removed(engine: Engine, network: str) -> bool | None:
    try:
        engine.remove_network(network)
    except ContainerConflict:
        return None
    return True


@pytest.fixture
def test_network(engine: Engine, run_labels: dict[str, str]) -> str:
    """A network of this test's own (removed by the `engine` fixture's teardown)."""
    name = f"baepo-test-{run_labels['baepo.test.run'][:12]}"
    return engine.ensure_network(name, run_labels).name


@pytest.fixture
def spec(
    request: pytest.FixtureRequest, engine: Engine, run_labels: dict[str, str], test_network: str
) -> Callable[..., ContainerSpec]:
    """`spec(image, **fields)`: a ContainerSpec carrying the test's labels and a unique name,
    on the test's network. On a swarm, a test image is the cluster registry's copy (by
    digest), pulled with its credentials."""
    prefix = f"baepo-test-{run_labels['baepo.test.run'][:10]}"
    counter = iter(range(1_000_000))
    images: SwarmImages | None = None
    if isinstance(engine, SwarmEngine):
        images = request.getfixturevalue("swarm_images")

    def make(image: str, **fields: Any) -> ContainerSpec:
        labels = {**fields.pop("labels", {}), **run_labels}
        fields.setdefault("name", f"{prefix}-{next(counter)}")
        fields.setdefault("network", test_network)
        if images is not None:
            image = images.refs.get(image) or f"{images.registry}/{image}"
            fields.setdefault("pull_auth", images.credentials)
        return ContainerSpec(image=image, labels=labels, **fields)

    return make


# -- the test swarm (tests/swarm_cluster.py): its registry, its images, the edge -------------


@dataclass(frozen=True)
class SwarmImages:
    """The test images in a registry the swarm's nodes pull from (with `credentials`)."""

    registry: str  # host:port
    credentials: tuple[str, str]
    refs: Mapping[str, str]  # local name (baepo-test/hello:1) → repository@digest there

    @property
    def hello(self) -> str:
        return self.refs["baepo-test/hello:1"]

    @property
    def busybox(self) -> str:
        return self.refs["baepo-test/busybox:1"]


@pytest.fixture(scope="session")
def swarm_images(
    swarm_manager: str, docker_host: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SwarmImages]:
    """docker-registry with htpasswd on the host's address on the nodes' bridge, holding the
    test images (copied from the shared engine by skopeo)."""
    if shutil.which("skopeo") is None:
        missing("skopeo is not installed (apt install skopeo)")
    root = tmp_path_factory.mktemp("swarm-registry")
    with distribution(root, f"{HOST_ADDRESS}:{free_port()}") as registry:
        images = (
            "baepo-test/hello:1",
            "baepo-test/hello:2",
            "baepo-test/busybox:1",
            "baepo-test/crash:1",
            "baepo-test/broken:1",
        )
        refs = {
            image: copy_in(docker_host, image, f"{registry.host}/{image.partition(':')[0]}", root)
            for image in images
        }
        yield SwarmImages(registry.host, registry.credentials, refs)


def copy_in(docker_host: str, image: str, repository: str, root: Path) -> str:
    """Copy the shared engine's `image` to `repository` (same tag); `repository@digest`."""
    digest_file = root / f"digest-{uuid.uuid4().hex}"
    subprocess.run(
        [
            "skopeo", "copy", "--quiet", "--src-daemon-host", docker_host,
            "--dest-tls-verify=false", "--dest-creds", "robot:s3cret",
            "--digestfile", str(digest_file),
            f"docker-daemon:{image}", f"docker://{repository}:{image.partition(':')[2]}",
        ],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return f"{repository}@{digest_file.read_text().strip()}"


@pytest.fixture(scope="session")
def swarm_edge(swarm_manager: str, swarm_images: SwarmImages) -> Iterator[Edge]:
    """The edge on the manager; removed at the end (the host's link and routes go with it)."""
    SwarmEngine(swarm_manager).pull(swarm_images.busybox, swarm_images.credentials)
    made = Edge(
        swarm_manager, swarm_images.busybox, name="baepo-edge-test", host_link="baepo-edge-t0"
    )
    yield made
    made.remove()
