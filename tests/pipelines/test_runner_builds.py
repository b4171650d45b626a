"""The runner's build on the real Docker engine, with the real Builder pushing to the session's
Baepo (the deploy is the fake of `test_runner.py`): a build past its time limit is stopped on
the engine and fails the run; after each deploy only the newest images of the service's
repository stay on the engine, and the next build still finds its layers there."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from baepo.clock import SystemClock
from baepo.config import Config
from baepo.control import SYSTEM, RegistryLink
from baepo.pipelines.builds import KEEP_IMAGES, LABEL_REPOSITORY, Builder
from baepo.pipelines.runner import Runner
from baepo.pipelines.runs import Runs, RunView
from baepo.runtime import DockerEngine
from baepo.runtime.engine_http import EngineClient, ResponseError, TransportError, endpoint
from tests.conftest import BaepoProcess
from tests.pipelines.test_runner import Deploys
from tests.pipelines.world import ALICE, Directory, database, source_tar
from tests.runtime.test_builds import sleeping
from tests.runtime.waiting import eventually

pytestmark = pytest.mark.integration


@dataclass
class Built:
    """Runs of one service (a name of the test's own) whose builds are real."""

    service: str
    engine: DockerEngine
    runs: Runs
    deploys: Deploys
    registry_host: str
    tmp: Path
    root: Path

    @property
    def repository(self) -> str:
        return f"alice/{self.service}"

    def run(self, files: Mapping[str, str], commit: str) -> RunView:
        tar = source_tar(self.tmp / f"{commit}.tar", files)
        run = self.runs.submit(
            self.service, source=tar, branch="main", commit=commit, trigger="push", caller=ALICE
        )

        def ended() -> RunView | None:
            now = self.runs.get(run.id, caller=SYSTEM)
            return now if now.done else None

        return eventually(ended, 120, "the run ends")

    def log(self, run: RunView) -> str:
        return (self.root / "logs" / f"{run.id}.log").read_text()


@pytest.fixture
def built(docker_host: str, baepo_server: BaepoProcess, tmp_path: Path) -> Iterator[Built]:
    token = Config(data_dir=baepo_server.data_dir).secrets_dir / "engine-token"
    link = RegistryLink.of(
        [baepo_server.host], lambda: ("token", token.read_text().strip()), baepo_server.host
    )
    engine = DockerEngine(docker_host)
    service = f"app-{secrets.token_hex(4)}"
    directory = Directory({service: "alice"})
    deploys = Deploys(directory)
    runner = Runner(
        engine=engine,
        builder=Builder(engine, link, SystemClock()),
        services=deploys,
        deploy_branch=lambda service: "main",
        clock=SystemClock(),
        registry=link,
        may_pull=lambda owner, repository: False,
        base_images={},
        installation="test-installation",
        poll_s=0,
    )
    db = database(tmp_path)
    root = tmp_path / "pipelines"
    runs = Runs(db=db, services=directory, runner=runner, clock=SystemClock(), directory=root)
    runs.start()
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    yield Built(service, engine, runs, deploys, baepo_server.host, uploads, root)
    runs.stop()
    client = EngineClient(docker_host, timeout_s=60)
    for image in engine.images({LABEL_REPOSITORY: f"alice/{service}"}):
        with contextlib.suppress(ResponseError, TransportError):
            client.request("DELETE", endpoint("/images/{}", image.id), query={"force": 1})
    engine.close()
    db.dispose()


def test_a_build_past_its_time_limit_is_stopped_on_the_engine(built: Built) -> None:
    seconds = 1000 + secrets.randbelow(1000)  # the step's process, told apart on this host
    marker = secrets.token_hex(8)
    files = {
        "Dockerfile": f"FROM baepo-test/busybox:1\nRUN echo {marker} && sleep {seconds}\n",
        "baepo.yaml": "build: {timeout: 3}\n",
    }

    run = built.run(files, "a" * 40)

    assert (run.status, run.message) == ("FAILED", "the build took longer than 3 s (build.timeout)")
    assert marker in built.log(run)  # the step ran, and was stopped
    eventually(lambda: None if sleeping(seconds) else True, 30, "the engine stops the step")
    assert not built.engine.image_present(f"{built.registry_host}/{built.repository}:{'a' * 40}")
    assert built.deploys.deployed == []


def test_after_each_deploy_only_the_newest_images_stay_on_the_engine(built: Built) -> None:
    dockerfile = (
        f"FROM baepo-test/busybox:1\nRUN echo {secrets.token_hex(8)} > /marker\n"
        "COPY app.txt /app.txt\n"
    )
    commits = [f"{n:040x}" for n in range(1, KEEP_IMAGES + 3)]
    for number, commit in enumerate(commits, 1):
        run = built.run({"Dockerfile": dockerfile, "app.txt": f"version {number}\n"}, commit)
        assert run.status == "SUCCEEDED", (run.message, built.log(run))

    images = built.engine.images({LABEL_REPOSITORY: built.repository})
    assert [image.tags for image in images] == [
        (f"{built.registry_host}/{built.repository}:{commit}",)
        for commit in reversed(commits[-KEEP_IMAGES:])
    ]
    assert f"removed 1 older image of {built.repository} from the engine" in built.log(run)

    # The next commit changes the app only: its RUN layer is still the engine's cache.
    last = built.run({"Dockerfile": dockerfile, "app.txt": "version 9\n"}, "9" * 40)
    assert last.status == "SUCCEEDED", last.message
    assert "Using cache" in built.log(last)
    assert len(built.engine.images({LABEL_REPOSITORY: built.repository})) == KEEP_IMAGES
