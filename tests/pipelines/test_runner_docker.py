"""The runner's steps on the real Docker engine: a shared workspace, exit codes, secrets
masked in what a real shell prints, a timeout and a cancel that kill the container.

The build and the deploy are the fakes of `test_runner.py` (the Builder has its own tests
against the engine and a real registry; the deploy is the control room's)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from baepo.clock import SystemClock
from baepo.control import RegistryLink
from baepo.pipelines.runner import LABEL_RUN, Runner
from baepo.pipelines.runs import Runs, RunView
from baepo.runtime import DockerEngine
from tests.pipelines.test_runner import Builds, Deploys, RunnerWorld
from tests.pipelines.world import ALICE, Directory, database, source_tar
from tests.runtime.waiting import eventually

pytestmark = pytest.mark.integration

BUSYBOX = "baepo-test/busybox:1"
DOCKERFILE = {"Dockerfile": "FROM baepo-test/busybox:1\n"}


@pytest.fixture
def w(docker_host: str, tmp_path: Path) -> Iterator[RunnerWorld]:
    engine = DockerEngine(docker_host)
    if not hasattr(engine, "wait"):
        pytest.skip("needs the engine's mounts, workdir and wait (helper B's branch)")
    directory = Directory({"app": "alice"})
    deploys, builds = Deploys(directory), Builds()
    db = database(tmp_path)
    runner = Runner(
        engine=engine,
        builder=builds,
        services=deploys,
        deploy_branch=lambda service: "main",
        clock=SystemClock(),
        registry=RegistryLink.of(["localhost:5000"]),
        may_pull=lambda owner, repository: False,
        base_images={},
        installation="test-installation",
        poll_s=0,
    )
    root = tmp_path / "pipelines"
    runs = Runs(db=db, services=directory, runner=runner, clock=SystemClock(), directory=root)
    runs.start()
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    made = RunnerWorld(runs, runner, engine, builds, deploys, uploads, root)  # type: ignore[arg-type]  # a real engine where the fake's type is declared
    yield made
    for run in runs.list(caller=ALICE):
        runner.abandon(run.id)
    db.dispose()


def pipeline(*steps: str) -> dict[str, str]:
    return {**DOCKERFILE, "baepo.yaml": "steps:\n" + "".join(steps)}


def step(name: str, *commands: str, extra: str = "") -> str:
    listed = ", ".join(f"'{c}'" for c in commands)
    return f"  - name: {name}\n    image: {BUSYBOX}\n    commands: [{listed}]\n{extra}"


def test_steps_share_the_workspace_and_a_failure_stops_the_run(w: RunnerWorld) -> None:
    files = pipeline(
        step("write", "echo built > out.txt", "pwd"),
        step("read", "cat out.txt", "cat app.txt"),
        step("fail", "echo about to fail", "exit 3", "echo never"),
    )
    run = w.run({**files, "app.txt": "from the repository"})
    assert (run.status, run.message) == ("FAILED", "step fail failed (exit code 3)")
    assert [(s.name, s.exit_code) for s in run.steps] == [("write", 0), ("read", 0), ("fail", 3)]
    log = w.log(run)
    for line in ("$ echo built > out.txt", "/workspace", "built", "from the repository"):
        assert line in log
    assert "about to fail" in log and "never" not in log
    assert w.engine.list({LABEL_RUN: run.id}) == [] and w.builds.calls == []


def test_a_secret_a_real_shell_prints_is_masked(w: RunnerWorld) -> None:
    w.deploys.secret_values["app"] = {"TOKEN": "tok-3f9a-secret"}
    files = pipeline(step("leak", "echo the token is $TOKEN", extra="    secrets: [TOKEN]\n"))
    run = w.run(files)
    assert run.status == "SUCCEEDED", run.message
    assert "the token is ***" in w.log(run)
    assert "tok-3f9a-secret" not in "\n".join(w.log(run))


def test_a_step_past_its_timeout_is_killed(w: RunnerWorld) -> None:
    run = w.run(pipeline(step("hang", "echo waiting", "sleep 60", extra="    timeout: 2\n")))
    assert (run.status, run.message) == ("FAILED", "step hang timed out after 2 s")
    assert "waiting" in w.log(run)
    assert w.engine.list({LABEL_RUN: run.id}) == []


def test_cancel_kills_the_running_step(w: RunnerWorld) -> None:
    tar = source_tar(w.tmp / "hang.tar", pipeline(step("hang", "echo started", "sleep 60")))
    run = w.runs.submit(
        "app", source=tar, branch="main", commit="9" * 40, trigger="push", caller=ALICE
    )

    def printed() -> bool | None:
        path = w.root / "logs" / f"{run.id}.log"
        return (path.exists() and "started" in path.read_text().splitlines()) or None

    eventually(printed, 60, "the step prints")
    w.runs.cancel(run.id, caller=ALICE)
    ended: RunView = w.ended(run)
    assert (ended.status, ended.message) == ("CANCELLED", "cancelled by alice")
    assert w.engine.list({LABEL_RUN: run.id}) == []
