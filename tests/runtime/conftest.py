"""Fixtures for the runtime room: one `engine` fixture, run as MemoryEngine and as DockerEngine.

The Docker variant is `integration`: a session fixture makes sure an engine answers
(`scripts/engine`) and the test images exist (`scripts/test-images`). Every container a test
starts carries a label unique to the test, and teardown removes all containers carrying it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from baepo.runtime import (
    ContainerNotFound,
    ContainerSpec,
    DockerEngine,
    Engine,
    MemoryEngine,
    baepo_test_images,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def docker_host() -> str:
    engine = subprocess.run(
        [str(ROOT / "scripts" / "engine")], capture_output=True, text=True, timeout=180
    )
    if engine.returncode != 0:
        pytest.fail(f"scripts/engine failed:\n{engine.stderr}")
    host = engine.stdout.strip().splitlines()[-1]
    images = subprocess.run(
        [str(ROOT / "scripts" / "test-images")],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "DOCKER_HOST": host},
    )
    if images.returncode != 0:
        pytest.fail(f"scripts/test-images failed:\n{images.stdout}\n{images.stderr}")
    return host


@pytest.fixture
def run_labels() -> dict[str, str]:
    """Labels unique to this test: every container it starts carries them."""
    return {"baepo.test.run": uuid.uuid4().hex}


@pytest.fixture(params=["memory", pytest.param("docker", marks=pytest.mark.integration)])
def engine(request: pytest.FixtureRequest, run_labels: dict[str, str]) -> Iterator[Engine]:
    if request.param == "memory":
        memory = MemoryEngine(images=baepo_test_images())
        yield memory
        memory.close()
        return
    docker_engine = DockerEngine(request.getfixturevalue("docker_host"))
    yield docker_engine
    for instance in docker_engine.list(run_labels):
        with contextlib.suppress(ContainerNotFound):
            docker_engine.remove(instance.id)
    docker_engine.close()


@pytest.fixture
def spec(run_labels: dict[str, str]) -> Callable[..., ContainerSpec]:
    """`spec(image, **fields)`: a ContainerSpec carrying the test's labels and a unique name."""
    prefix = f"baepo-test-{run_labels['baepo.test.run'][:10]}"
    counter = iter(range(1_000_000))

    def make(image: str, **fields: Any) -> ContainerSpec:
        labels = {**fields.pop("labels", {}), **run_labels}
        fields.setdefault("name", f"{prefix}-{next(counter)}")
        return ContainerSpec(image=image, labels=labels, **fields)

    return make
