"""The pipeline's image builder: against MemoryEngine (what it asks of the engine), then a real
engine and a real Baepo registry (the examples built, pushed, the digest the registry's)."""

from __future__ import annotations

import contextlib
import secrets
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from baepo.clock import FakeClock, SystemClock
from baepo.config import Config
from baepo.control import RegistryLink
from baepo.pipelines.builds import LABEL_REPOSITORY, Builder
from baepo.runtime import (
    BuildCancelled,
    BuildFailed,
    BuildSpec,
    ContainerSpec,
    DockerEngine,
    ImageNotFound,
    PushFailed,
)
from baepo.runtime.engine_http import EngineClient, ResponseError, TransportError, endpoint
from tests.clients import registry_digest
from tests.conftest import BaepoProcess
from tests.fakes.engine import MemoryEngine, baepo_test_images

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ROBOT = ("token", "engine-secret")
integration = pytest.mark.integration


@pytest.fixture
def engine() -> Iterator[MemoryEngine]:
    memory = MemoryEngine(images=baepo_test_images())
    memory.require_login("127.0.0.1:5000", ROBOT)
    yield memory
    memory.close()


@pytest.fixture
def builder(engine: MemoryEngine) -> Builder:
    link = RegistryLink.of(
        ["127.0.0.1:5000", "registry.example.org"], lambda: ROBOT, pull_host="127.0.0.1:5000"
    )
    return Builder(engine, link, FakeClock(), cpu=1, memory_mb=512)


def ignore(line: str) -> None:
    pass


def workspace(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_the_image_is_built_and_pushed_to_the_registry_the_engine_reaches(
    builder: Builder, engine: MemoryEngine, tmp_path: Path
) -> None:
    root = workspace(tmp_path, {"Dockerfile": "FROM baepo-test/busybox:1\nCOPY . /app\n"})
    lines: list[str] = []

    ref = builder.build_and_push(root, repository="team/web", tag="abc123", on_line=lines.append)

    assert ref == "127.0.0.1:5000/team/web:abc123"
    pulled = engine.pull(ref, auth=ROBOT)
    assert lines[-1].startswith(f"Pushed {ref} ({pulled.digest})")
    [spec] = engine.builds
    assert spec.tag == ref
    assert spec.labels == {LABEL_REPOSITORY: "team/web"}
    assert (spec.cpu, spec.memory_mb) == (1, 512)
    # A FROM one of Baepo's images is pulled with the engine's credential, by any of its names.
    assert spec.registry_auth == {"127.0.0.1:5000": ROBOT, "registry.example.org": ROBOT}


def test_a_generated_dockerfile_and_a_context_below_the_workspace(
    builder: Builder, engine: MemoryEngine, tmp_path: Path
) -> None:
    root = workspace(tmp_path, {"app/server.js": "", "README": ""})

    builder.build_and_push(
        root,
        repository="team/node",
        tag="1",
        context="app",
        dockerfile_text="FROM baepo-test/busybox:1\nCOPY . /app\n",
        on_line=lambda line: None,
    )

    [spec] = engine.builds
    assert spec.context == (tmp_path / "app").resolve()
    assert spec.dockerfile_text == "FROM baepo-test/busybox:1\nCOPY . /app\n"


@pytest.mark.parametrize(
    ("context", "message"),
    [("..", "outside the workspace"), ("absent", "not a directory")],
)
def test_a_context_outside_the_workspace_is_refused(
    builder: Builder, engine: MemoryEngine, tmp_path: Path, context: str, message: str
) -> None:
    root = workspace(tmp_path / "ws", {"Dockerfile": "FROM baepo-test/busybox:1\n"})

    with pytest.raises(BuildFailed, match=message):
        builder.build_and_push(
            root, repository="team/web", tag="1", context=context, on_line=lambda line: None
        )

    assert engine.builds == []


def test_a_failed_build_pushes_nothing(
    builder: Builder, engine: MemoryEngine, tmp_path: Path
) -> None:
    root = workspace(tmp_path, {"Dockerfile": "FROM baepo-test/busybox:1\nRUN exit 2\n"})

    with pytest.raises(BuildFailed, match="non-zero code: 2"):
        builder.build_and_push(root, repository="team/web", tag="1", on_line=lambda line: None)

    with pytest.raises(ImageNotFound):
        engine.pull("127.0.0.1:5000/team/web:1", auth=ROBOT)


def test_a_cancelled_build_pushes_nothing(
    builder: Builder, engine: MemoryEngine, tmp_path: Path
) -> None:
    root = workspace(tmp_path, {"Dockerfile": "FROM baepo-test/busybox:1\nRUN true\n"})
    cancel = threading.Event()
    cancel.set()

    with pytest.raises(BuildCancelled):
        builder.build_and_push(
            root, repository="team/web", tag="1", on_line=lambda line: None, cancel=cancel
        )

    with pytest.raises(ImageNotFound):
        engine.pull("127.0.0.1:5000/team/web:1", auth=ROBOT)


def test_prune_keeps_the_newest_the_deployed_and_the_used_images(
    builder: Builder, engine: MemoryEngine, tmp_path: Path
) -> None:
    def build(tag: str, text: str) -> str:
        root = workspace(tmp_path / tag, {"Dockerfile": f"FROM baepo-test/busybox:1\n{text}\n"})
        return builder.build_and_push(root, repository="team/web", tag=tag, on_line=ignore)

    refs = [build(str(n), f"RUN echo {n}") for n in range(1, 7)]
    engine.run(ContainerSpec(image=refs[0]))  # 1 runs
    engine.build(  # 3 has a name of someone's on the engine too
        BuildSpec(
            context=tmp_path / "3",
            tag="someone/else:3",
            labels={LABEL_REPOSITORY: "team/web"},
        ),
        ignore,
    )
    replaced = engine.images({LABEL_REPOSITORY: "team/web"})[0].id
    build("6", "RUN echo 6 again")  # 6 moves to a new image: the old one is untagged

    removed = builder.prune("team/web", keep=refs[1])  # 2 is deployed

    assert removed == [refs[2]]
    images = engine.images({LABEL_REPOSITORY: "team/web"})
    assert [sorted(image.tags) for image in images] == [
        [refs[5]],  # the newest three
        [refs[4]],
        [refs[3]],
        ["docker.io/someone/else:3"],
        [refs[1]],
        [refs[0]],
    ]
    assert replaced not in [image.id for image in images]


def test_a_refused_credential_fails_the_push(engine: MemoryEngine, tmp_path: Path) -> None:
    link = RegistryLink.of(["127.0.0.1:5000"], lambda: ("token", "revoked"))
    root = workspace(tmp_path, {"Dockerfile": "FROM baepo-test/busybox:1\n"})

    with pytest.raises(PushFailed, match="unauthorized"):
        Builder(engine, link, FakeClock()).build_and_push(
            root, repository="team/web", tag="1", on_line=lambda line: None
        )


def test_a_repository_that_is_no_name_is_refused(builder: Builder, tmp_path: Path) -> None:
    root = workspace(tmp_path, {"Dockerfile": "FROM baepo-test/busybox:1\n"})

    with pytest.raises(BuildFailed, match="lowercase"):
        builder.build_and_push(root, repository="Team/Web", tag="1", on_line=lambda line: None)


# -- a real engine, a real Baepo --------------------------------------------------------------


@dataclass
class Real:
    engine: DockerEngine
    builder: Builder
    credentials: Callable[[], tuple[str, str]]


@pytest.fixture
def real(docker_host: str, baepo_server: BaepoProcess) -> Iterator[Real]:
    """DockerEngine and a Builder pushing to the session's Baepo with the engine's own
    credential (the token `baepo up` keeps for the engine's pulls)."""
    token = Config(data_dir=baepo_server.data_dir).secrets_dir / "engine-token"

    def credentials() -> tuple[str, str]:
        return ("token", token.read_text().strip())

    link = RegistryLink.of([baepo_server.host], credentials, baepo_server.host)
    engine = DockerEngine(docker_host)
    yield Real(engine, Builder(engine, link, SystemClock()), credentials)
    engine.close()


@pytest.fixture
def cleanup(docker_host: str) -> Iterator[Callable[[str], None]]:
    """`cleanup(ref)`: the image tagged `ref` (and its containers) removed after the test."""
    refs: list[str] = []
    yield refs.append
    client = EngineClient(docker_host, timeout_s=60)
    for ref in refs:
        with contextlib.suppress(ResponseError, TransportError):
            client.request("DELETE", endpoint("/images/{}", ref), query={"force": 1})


@integration
def test_the_python_example_is_built_pushed_and_runs_its_tests(
    real: Real, cleanup: Callable[[str], None], tmp_path: Path
) -> None:
    engine, builder = real.engine, real.builder
    root = shutil.copytree(EXAMPLES / "pipeline-python", tmp_path / "ws")
    repository = f"team/pipeline-{secrets.token_hex(3)}"
    lines: list[str] = []

    ref = builder.build_and_push(root, repository=repository, tag="c0ffee", on_line=lines.append)
    cleanup(ref)

    digest = lines[-1].split("(")[1].split(")")[0]
    assert registry_digest(ref, real.credentials()) == digest
    test_run = engine.run(
        ContainerSpec(
            image=ref,
            command=["python3", "-m", "unittest", "-q"],
            labels={"baepo.test.run": secrets.token_hex(4)},
        )
    )
    try:
        assert engine.wait(test_run.id, timeout_s=60) == 0, engine.logs(test_run.id)
    finally:
        engine.remove(test_run.id)

    # The next commit changes the app only: the dependency layer comes from the cache.
    (root / "app.py").write_text((root / "app.py").read_text() + "\n# changed\n")
    again: list[str] = []
    second = builder.build_and_push(
        root, repository=repository, tag="c0ffee2", on_line=again.append
    )
    cleanup(second)
    assert any("Using cache" in line for line in again)


@integration
def test_an_apprunner_app_builds_from_a_generated_dockerfile_on_the_node_image(
    real: Real, cleanup: Callable[[str], None], tmp_path: Path
) -> None:
    builder = real.builder
    root = shutil.copytree(EXAMPLES / "apprunner-node", tmp_path / "ws")
    generated = (
        "FROM baepo/runtime-node:18\nWORKDIR /app\nCOPY . /app\nRUN node --check server.js\n"
        'EXPOSE 8080\nCMD ["/bin/sh", "-c", "node server.js"]\n'
    )
    lines: list[str] = []

    ref = builder.build_and_push(
        root,
        repository=f"team/node-{secrets.token_hex(3)}",
        tag="1",
        dockerfile_text=generated,
        on_line=lines.append,
    )
    cleanup(ref)

    assert any("node --check server.js" in line for line in lines)
    assert lines[-1].startswith(f"Pushed {ref} (sha256:")
