"""The runner through the runs' queue: steps in (fake) containers, build and push (a fake
Builder), deploy (a fake of the control room's `Services`), and every way a run can fail.

The engine is the tests' `MemoryEngine` with what the runner needs on top (`wait`; a step's
output and exit decided by its script), the clock a `FakeClock` that a waiting step moves.
"""

from __future__ import annotations

import io
import shlex
import tarfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from baepo.clock import FakeClock
from baepo.control import (
    SYSTEM,
    Caller,
    InvalidServiceState,
    LogLine,
    OperationView,
    RegistryLink,
    ServiceIdentity,
)
from baepo.pipelines.runner import LABEL_RUN, LABEL_STEP, Runner
from baepo.pipelines.runs import Runs, RunView
from baepo.runtime import (
    BuildCancelled,
    ContainerSpec,
    Credentials,
    EngineError,
    Image,
    ImageNotFound,
    Instance,
)
from tests.fakes.engine import FakeImage, MemoryEngine
from tests.pipelines.world import ALICE, Directory, database, source_tar
from tests.runtime.waiting import eventually

REGISTRY = "localhost:5000"
ROBOT = ("robot", "robot-secret")
AT = datetime(2026, 1, 1, tzinfo=UTC)
TESTS = """
steps:
  - name: lint
    image: baepo-test/python:3
    commands: ["echo lint"]
  - name: test
    image: baepo-test/python:3
    commands: ["python3 -m unittest"]
    environment: {CI: "true"}
    cpu: 0.5
    memory: 256
    depends_on: [lint]
"""
APP = {"baepo.yaml": TESTS, "Dockerfile": "FROM baepo/runtime-python:3\n", "app.py": "v1"}


def _expand(text: str, env: Mapping[str, str]) -> str:
    for name, value in env.items():
        text = text.replace(f"${name}", value)
    return text


class StepEngine(MemoryEngine):
    """`MemoryEngine` plus `wait`; a step's commands (`;`-separated) say how it goes:
    `echo TEXT` prints TEXT ($NAME of the environment expanded), `exit N` exits with N,
    `forever` keeps it running; past the last command it exits 0."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock, images=[FakeImage(ref="baepo-test/python:3")])
        self.clock = clock
        self.specs: list[ContainerSpec] = []
        self.moves_clock = True
        self.registry: set[str] = set()
        """Refs Baepo's registry holds (`pull` takes them with the robot's credentials)."""
        self.pulls: list[tuple[str, Credentials | None]] = []

    def pull(self, ref: str, auth: Credentials | None = None) -> Image:
        self.pulls.append((ref, auth))
        if ref not in self.registry or auth != ROBOT:
            raise ImageNotFound(f"cannot pull {ref}: manifest unknown")
        self.load(FakeImage(ref=ref))
        return Image(ref=ref, id=f"id-{ref}", digest=None)

    def run(self, spec: ContainerSpec) -> Instance:
        instance = super().run(spec)
        self.specs.append(spec)
        script = spec.command[2] if spec.command else ""
        commands = [shlex.split(line)[1] for line in script.splitlines() if line.startswith("eval")]
        for command in commands:
            self.write(instance.id, f"$ {command}")
            for part in command.split(";"):
                verb, _, rest = part.strip().partition(" ")
                if verb == "echo":
                    self.write(instance.id, _expand(rest, spec.env))
                elif verb == "exit":
                    self.crash(instance.id, int(rest))
                    return instance
                elif verb == "forever":
                    return instance
        self.crash(instance.id, 0)
        return instance

    def wait(self, instance_id: str, timeout_s: float) -> int | None:
        found = self.inspect(instance_id)
        if found.state != "running":
            return found.exit_code
        if self.moves_clock:
            self.clock.advance(timeout_s)
        else:
            threading.Event().wait(0.005)  # a real engine waits here; the test cancels meanwhile
        return None


@dataclass
class Builds:
    """The Builder: what it was asked, what it printed, what it pruned (`pruned`, removing
    `prunes` names, or failing with `prune_fails`). A build that `hangs` runs until it is
    stopped, moving `clock` (when given) a minute at a time, as the real one would."""

    calls: list[dict[str, object]] = field(default_factory=list)
    fails: str | None = None
    hangs: bool = False
    clock: FakeClock | None = None
    pruned: list[tuple[str, str]] = field(default_factory=list)
    prunes: list[str] = field(default_factory=list)
    prune_fails: str | None = None

    def build_and_push(
        self,
        workspace: Path,
        *,
        repository: str,
        tag: str,
        dockerfile: str = "Dockerfile",
        dockerfile_text: str | None = None,
        context: str = ".",
        on_line: Callable[[str], None],
        cancel: threading.Event | None = None,
    ) -> str:
        files = sorted(p.name for p in (workspace / context).iterdir())
        self.calls.append(
            {"files": files, "repository": repository, "tag": tag, "dockerfile": dockerfile}
            | {"text": dockerfile_text}
        )
        on_line("Step 1/1 : FROM baepo/runtime-python:3")
        if self.fails:
            raise EngineError(self.fails)
        if self.hangs:
            on_line("Step 2/2 : RUN sleep 100000")
            self._hang(cancel or threading.Event())
        return f"{REGISTRY}/{repository}:{tag}"

    def prune(self, repository: str, *, keep: str) -> list[str]:
        self.pruned.append((repository, keep))
        if self.prune_fails:
            raise EngineError(self.prune_fails)
        return self.prunes

    def _hang(self, stop: threading.Event) -> None:
        for _ in range(10_000):
            if stop.wait(0.005):
                raise BuildCancelled("the build was cancelled")
            if self.clock is not None:
                self.clock.advance(60)
        raise AssertionError("the build was never stopped")


@dataclass
class Deploys:
    """`Services` for the runner: the services, their secrets, deploys that end after two
    looks with `ends` (SUCCEEDED by default)."""

    directory: Directory
    secret_values: dict[str, dict[str, str]] = field(default_factory=dict)
    ends: str = "SUCCEEDED"
    refuse: bool = False
    deployed: list[str] = field(default_factory=list)
    _looks: int = 0

    def identity(self, name: str, *, caller: Caller = SYSTEM) -> ServiceIdentity:
        return self.directory.identity(name, caller=caller)

    def secrets(self, name: str, *, caller: Caller = SYSTEM) -> dict[str, str]:
        return dict(self.secret_values.get(name, {}))

    def deploy(
        self, name: str, image: str | None = None, *, caller: Caller = SYSTEM
    ) -> OperationView:
        if self.refuse:
            raise InvalidServiceState(f"cannot deploy {name}: it is paused; resume it")
        assert image is not None
        self.deployed.append(image)
        return self._operation("PENDING", ())

    def operation(self, operation_id: str, *, caller: Caller = SYSTEM) -> OperationView:
        self._looks += 1
        lines = [LogLine(AT, "START_DEPLOYMENT requested"), LogLine(AT, "pulled the image")]
        if self._looks < 2:
            return self._operation("IN_PROGRESS", lines[:1])
        message = "" if self.ends == "SUCCEEDED" else "revision 2 never became healthy"
        return self._operation(self.ends, (*lines, LogLine(AT, self.ends)), message)

    def _operation(
        self, status: str, log: tuple[LogLine, ...] | list[LogLine], message: str = ""
    ) -> OperationView:
        return OperationView(
            "op-1", "app", "START_DEPLOYMENT", status, 2, message, AT, None, None, tuple(log)
        )


@dataclass
class RunnerWorld:
    runs: Runs
    runner: Runner
    engine: StepEngine
    builds: Builds
    deploys: Deploys
    tmp: Path
    root: Path
    deploy_branch: str = "main"

    def run(
        self, files: Mapping[str, str], branch: str = "main", commit: str = "c0ffee" * 6
    ) -> RunView:
        tar = source_tar(self.tmp / f"{commit}.tar", files)
        run = self.runs.submit(
            "app", source=tar, branch=branch, commit=commit, trigger="push", caller=ALICE
        )
        return self.ended(run)

    def ended(self, run: RunView) -> RunView:
        def probe() -> RunView | None:
            now = self.runs.get(run.id, caller=SYSTEM)
            return now if now.done else None

        return eventually(probe, 10, "the run ends")

    def log(self, run: RunView) -> list[str]:
        return (self.root / "logs" / f"{run.id}.log").read_text().splitlines()


@pytest.fixture
def w(tmp_path: Path) -> Iterator[RunnerWorld]:
    clock = FakeClock()
    engine = StepEngine(clock)
    engine.registry |= {f"{REGISTRY}/alice/tools:1", f"{REGISTRY}/bob/tools:1"}
    directory = Directory({"app": "alice"})
    deploys = Deploys(directory)
    builds = Builds()
    db = database(tmp_path)
    root = tmp_path / "pipelines"
    made: RunnerWorld | None = None

    def deploy_branch(service: str) -> str:
        assert made is not None
        return made.deploy_branch

    runner = Runner(
        engine=engine,
        builder=builds,
        services=deploys,
        deploy_branch=deploy_branch,
        clock=clock,
        registry=RegistryLink.of([REGISTRY], lambda: ROBOT),
        may_pull=lambda owner, repository: repository.startswith(f"{owner}/"),
        base_images={"python3": "baepo/runtime-python:3"},
        installation="test-installation",
        poll_s=0,
    )
    runs = Runs(db=db, services=directory, runner=runner, clock=clock, directory=root)
    runs.start()
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    made = RunnerWorld(runs, runner, engine, builds, deploys, uploads, root)
    yield made
    engine.close()
    db.dispose()


def test_steps_then_build_push_and_deploy_on_the_deploy_branch(w: RunnerWorld) -> None:
    run = w.run(APP)
    assert run.status == "SUCCEEDED", run.message
    image = f"{REGISTRY}/alice/app:{'c0ffee' * 6}"
    assert run.message == f"deployed {image} as revision 2"
    assert (run.image, run.operation_id) == (image, "op-1")
    assert [(s.name, s.status, s.exit_code) for s in run.steps] == [
        ("lint", "SUCCEEDED", 0),
        ("test", "SUCCEEDED", 0),
    ]
    _, test = w.engine.specs
    assert test.command is not None and list(test.command[:2]) == ["/bin/sh", "-ec"]
    assert "python3 -m unittest" in test.command[2]
    assert [(m.target, m.read_only) for m in test.mounts] == [("/workspace", False)]
    assert test.mounts[0].source.endswith(f"/work/{run.id}") and test.workdir == "/workspace"
    assert (test.cpu, test.memory_mb, test.env) == (0.5, 256, {"CI": "true"})
    assert test.labels[LABEL_RUN] == run.id and test.labels[LABEL_STEP] == "test"
    assert w.engine.list({LABEL_RUN: run.id}) == []  # the step containers are removed
    assert w.builds.calls == [
        {
            "files": ["Dockerfile", "app.py", "baepo.yaml"],
            "repository": "alice/app",
            "tag": "c0ffee" * 6,
            "dockerfile": "Dockerfile",
            "text": None,
        }
    ]
    assert w.deploys.deployed == [image]
    log = w.log(run)
    for line in (
        "-----> 2 steps on main: lint, test",
        "-----> step lint (baepo-test/python:3)",
        "lint",
        "-----> step lint succeeded in 0.0 s",
        f"-----> building alice/app:{'c0ffee' * 2} with Dockerfile",
        "Step 1/1 : FROM baepo/runtime-python:3",
        f"-----> pushed {image}",
        f"-----> deploying {image} (operation op-1)",
        "       START_DEPLOYMENT requested",
        "       pulled the image",
        "       SUCCEEDED",
    ):
        assert line in log
    assert log[-1].startswith("-----> SUCCEEDED in ")
    assert not (w.root / "work" / run.id).exists()


def test_a_failing_step_fails_the_run_and_nothing_is_built_or_deployed(w: RunnerWorld) -> None:
    files = {**APP, "baepo.yaml": TESTS.replace('"echo lint"', '"echo lint failed; exit 3"')}
    run = w.run(files)
    assert (run.status, run.message) == ("FAILED", "step lint failed (exit code 3)")
    assert [(s.name, s.status, s.exit_code) for s in run.steps] == [("lint", "FAILED", 3)]
    assert len(w.engine.specs) == 1 and w.builds.calls == [] and w.deploys.deployed == []
    assert "lint failed" in w.log(run)


def test_another_branch_runs_its_steps_only(w: RunnerWorld) -> None:
    run = w.run(APP, branch="feature/x")
    assert run.status == "SUCCEEDED"
    assert run.message == "feature/x is not the deploy branch (main): nothing deployed"
    assert len(run.steps) == 2 and w.builds.calls == [] and w.deploys.deployed == []
    w.deploy_branch = "feature/x"
    assert w.run(APP, branch="feature/x", commit="1" * 40).status == "SUCCEEDED"
    assert w.deploys.deployed == [f"{REGISTRY}/alice/app:{'1' * 40}"]


def test_deploy_false_builds_nothing(w: RunnerWorld) -> None:
    run = w.run({**APP, "baepo.yaml": TESTS + "deploy: false\n"})
    assert (run.status, run.message) == ("SUCCEEDED", "baepo.yaml says deploy: false")
    assert w.builds.calls == [] and w.deploys.deployed == []


def test_no_pipeline_file_builds_and_deploys(w: RunnerWorld) -> None:
    run = w.run({"Dockerfile": "FROM x\n"})
    assert run.status == "SUCCEEDED" and run.steps == ()
    assert "-----> no baepo.yaml: build and deploy" in w.log(run)


def test_without_a_dockerfile_apprunner_yaml_is_built_on_its_runtimes_image(
    w: RunnerWorld,
) -> None:
    config = "version: 1.0\nruntime: python3\nrun:\n  command: python3 app.py\n"
    run = w.run({"apprunner.yaml": config, "app.py": "v1"})
    assert run.status == "SUCCEEDED", run.message
    (call,) = w.builds.calls
    assert isinstance(call["text"], str) and call["text"].startswith(
        "FROM baepo/runtime-python:3\n"
    )
    assert "-----> building alice/app:c0ffeec0ffee from apprunner.yaml (python3)" in w.log(run)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"app.py": "v1"}, "no Dockerfile or apprunner.yaml: nothing to build"),
        ({"baepo.yaml": "steps: 3\n"}, "baepo.yaml: steps: must be a list of steps, not"),
        ({"apprunner.yaml": "version: 1.0\nruntime: cobol\nrun:\n  command: x\n"}, "apprunner"),
    ],
)
def test_what_cannot_be_built_fails_the_run(
    w: RunnerWorld, files: dict[str, str], message: str
) -> None:
    run = w.run(files)
    assert run.status == "FAILED" and run.message.startswith(message), run.message
    assert w.deploys.deployed == []


def test_secrets_reach_the_step_and_are_masked_in_its_log(w: RunnerWorld) -> None:
    w.deploys.secret_values["app"] = {"DB_PASSWORD": "s3cret-value", "OTHER": "unused-value"}
    pipeline = """
steps:
  - name: db
    image: baepo-test/python:3
    commands: ["echo connecting with $DB_PASSWORD"]
    secrets: [DB_PASSWORD]
"""
    run = w.run({**APP, "baepo.yaml": pipeline})
    assert run.status == "SUCCEEDED", run.message
    assert w.engine.specs[0].env == {"DB_PASSWORD": "s3cret-value"}
    assert "connecting with ***" in w.log(run)
    assert "s3cret-value" not in "\n".join(w.log(run))
    missing = w.run({**APP, "baepo.yaml": pipeline.replace("[DB_PASSWORD]", "[NOPE]")})
    assert (missing.status, missing.message) == ("FAILED", "step db: app has no secret NOPE")


def test_a_step_past_its_timeout_is_killed_and_fails_the_run(w: RunnerWorld) -> None:
    pipeline = """
steps:
  - name: hang
    image: baepo-test/python:3
    commands: ["forever"]
    timeout: 5
"""
    run = w.run({**APP, "baepo.yaml": pipeline})
    assert (run.status, run.message) == ("FAILED", "step hang timed out after 5 s")
    assert w.engine.list({LABEL_RUN: run.id}) == [] and w.deploys.deployed == []


def test_cancel_kills_the_step(w: RunnerWorld) -> None:
    w.engine.moves_clock = False
    pipeline = "steps:\n  - {name: hang, image: baepo-test/python:3, commands: [forever]}\n"
    tar = source_tar(w.tmp / "hang.tar", {**APP, "baepo.yaml": pipeline})
    run = w.runs.submit(
        "app", source=tar, branch="main", commit="2" * 40, trigger="push", caller=ALICE
    )
    eventually(lambda: w.engine.list({LABEL_RUN: run.id}) or None, 10, "the step runs")
    w.runs.cancel(run.id, caller=ALICE)
    ended = w.ended(run)
    assert (ended.status, ended.message) == ("CANCELLED", "cancelled by alice")
    assert [s.status for s in ended.steps] == ["CANCELLED"]
    assert w.engine.list({LABEL_RUN: run.id}) == [] and w.builds.calls == []


def test_a_build_past_its_timeout_is_stopped_and_fails_the_run(w: RunnerWorld) -> None:
    w.builds.hangs, w.builds.clock = True, w.engine.clock
    run = w.run({**APP, "baepo.yaml": TESTS + "build: {timeout: 10m}\n"})
    assert (run.status, run.message) == (
        "FAILED",
        "the build took longer than 600 s (build.timeout)",
    )
    assert "-----> the build took longer than 600 s (build.timeout): stopped" in w.log(run)
    assert run.image is None and w.deploys.deployed == []


def test_cancel_stops_the_build(w: RunnerWorld) -> None:
    w.builds.hangs = True  # the clock stands still: only the cancel can stop it
    tar = source_tar(w.tmp / "build.tar", {"Dockerfile": "FROM x\n"})
    run = w.runs.submit(
        "app", source=tar, branch="main", commit="5" * 40, trigger="push", caller=ALICE
    )
    eventually(lambda: w.builds.calls or None, 10, "the build starts")
    w.runs.cancel(run.id, caller=ALICE)
    ended = w.ended(run)
    assert (ended.status, ended.message) == ("CANCELLED", "cancelled by alice")
    assert ended.image is None and w.deploys.deployed == []


def test_a_failed_build_or_deploy_fails_the_run(w: RunnerWorld) -> None:
    w.builds.fails = "The command '/bin/sh -c pip install' returned a non-zero code: 1"
    built = w.run(APP)
    assert built.status == "FAILED"
    assert built.message == f"the build failed: {w.builds.fails}"
    w.builds.fails = None
    w.deploys.ends = "FAILED"
    deployed = w.run(APP, commit="3" * 40)
    assert deployed.status == "FAILED"
    assert deployed.message == (
        "the deploy failed: revision 2 never became healthy; the service keeps its revision"
    )
    assert deployed.image is not None and deployed.operation_id == "op-1"
    w.deploys.refuse = True
    refused = w.run(APP, commit="4" * 40)
    assert refused.message == "cannot deploy app: cannot deploy app: it is paused; resume it"
    assert w.builds.pruned == []  # no image leaves the engine unless a deploy succeeded


def test_a_deploy_that_succeeded_prunes_the_older_images_but_the_deployed_one(
    w: RunnerWorld,
) -> None:
    w.builds.prunes = [f"{REGISTRY}/alice/app:{'0' * 40}", f"{REGISTRY}/alice/app:{'1' * 40}"]
    run = w.run(APP)
    assert run.status == "SUCCEEDED"
    assert w.builds.pruned == [("alice/app", f"{REGISTRY}/alice/app:{'c0ffee' * 6}")]
    assert "-----> removed 2 older images of alice/app from the engine" in w.log(run)
    w.builds.prune_fails = "cannot list images: the engine is gone"
    again = w.run(APP, commit="5" * 40)
    assert again.status == "SUCCEEDED", again.message  # the next run prunes again
    assert (
        "-----> cannot remove older images of alice/app: cannot list images: the engine is gone"
        in w.log(again)
    )


def test_step_images_of_baepos_registry_are_pulled_with_the_owners_rights(
    w: RunnerWorld,
) -> None:
    mine = "steps:\n  - {name: t, image: localhost:5000/alice/tools:1, commands: [echo ok]}\n"
    run = w.run({**APP, "baepo.yaml": mine})
    assert run.status == "SUCCEEDED", run.message
    assert w.engine.pulls == [(f"{REGISTRY}/alice/tools:1", ROBOT)]
    theirs = mine.replace("alice/tools", "bob/tools")
    refused = w.run({**APP, "baepo.yaml": theirs}, commit="5" * 40)
    assert refused.message == "step t: alice may not pull localhost:5000/bob/tools:1"
    absent = w.run({**APP, "baepo.yaml": mine.replace("tools:1", "tools:9")}, commit="6" * 40)
    assert absent.message.startswith("step t: cannot pull localhost:5000/alice/tools:9")


def test_a_source_that_leaves_its_tree_is_refused(w: RunnerWorld) -> None:
    tar_path = w.tmp / "evil.tar"
    with tarfile.open(tar_path, "w") as tar:
        info = tarfile.TarInfo("../evil")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    run = w.runs.submit(
        "app", source=tar_path, branch="main", commit="7" * 40, trigger="push", caller=ALICE
    )
    ended = w.ended(run)
    assert (ended.status, ended.message) == (
        "FAILED",
        "the source holds '../evil', a path outside its tree",
    )
    assert not (w.root / "work" / "evil").exists()


def test_abandon_removes_a_cut_runs_step_containers(w: RunnerWorld) -> None:
    step = ["/bin/sh", "-ec", "eval forever"]
    w.engine.run(ContainerSpec(image="baepo-test/python:3", command=step, labels={LABEL_RUN: "r1"}))
    w.engine.run(ContainerSpec(image="baepo-test/python:3", command=step, labels={LABEL_RUN: "r2"}))
    w.runner.abandon("r1")
    assert w.engine.list({LABEL_RUN: "r1"}) == []
    assert len(w.engine.list({LABEL_RUN: "r2"})) == 1
