"""`Runner`: executes one run — test, build, push, deploy — writing every stage to its log.

    unpack    the commit's tree (`sources.py`) into `<data>/pipelines/work/<run id>/`
    parse     `baepo.yaml` (none: the default pipeline, no steps); an error fails the run
    steps     `spec.order(branch)`, one at a time, each in a container on the engine:
              the workspace mounted at /workspace (also its working directory), the step's
              CPU and memory limits, its environment and the service's secrets it names
              (masked in the log), `/bin/sh -ec <script>`; killed at its timeout. A step that
              exits non-zero fails the run: nothing is built or deployed
    build     only on the service's deploy branch (and unless `deploy: false`): with the
              Dockerfile (`build.dockerfile` in `build.context`), else with the Dockerfile
              made from `apprunner.yaml` on the runtime's base image, else the run fails;
              stopped (the engine breaks it off) and failed past `build.timeout`
    push      to Baepo's registry as `<registry>/<owner>/<service>:<commit>` (the Builder)
    deploy    `Services.deploy(service, image=…)`: the same operation as any deploy (health
              gate, the old revision kept serving on failure), followed until it ends, its
              log lines copied into the run's log; the run SUCCEEDED only if it did
    prune     after a deploy that succeeded, the repository's older images leave the engine
              (`Builder.prune`: the newest few and the one deployed stay). One run of a
              service executes at a time, so no other run of it builds or deploys meanwhile

Step containers carry `baepo.pipeline.run=<run id>` and `baepo.pipeline.step=<name>`, so that
a run cut short by a restart leaves nothing behind (`abandon`). A cancel kills the step's
container, breaks the build off, or stops waiting for the deploy (which goes on: an
operation is not undone halfway).
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Literal, Protocol

from baepo.clock import Clock
from baepo.control import (
    LABEL_INSTALLATION,
    SYSTEM,
    Caller,
    ControlError,
    OperationStatus,
    OperationView,
    RegistryLink,
    ServiceIdentity,
)
from baepo.pipelines.apprunner import dockerfile_for, parse_apprunner
from baepo.pipelines.errors import (
    AppRunnerConfigError,
    PipelineSpecError,
    RunCancelled,
    RunFailed,
)
from baepo.pipelines.run_logs import RunLog
from baepo.pipelines.runs import Outcome, RunJob, RunStatus, RunView, StepStatus
from baepo.pipelines.sources import holds_file, read_text, unpack
from baepo.pipelines.spec import DEFAULT_PIPELINE, PipelineSpec, Step, parse_pipeline
from baepo.references import InvalidReference, Reference
from baepo.runtime import (
    ContainerSpec,
    Credentials,
    EngineError,
    Image,
    Instance,
    Mount,
    OutputStream,
)

log = logging.getLogger(__name__)

LABEL_RUN = "baepo.pipeline.run"
LABEL_STEP = "baepo.pipeline.step"
WORKSPACE = "/workspace"
PIPELINE_FILE = "baepo.yaml"
APPRUNNER_FILE = "apprunner.yaml"
WAIT_SLICE_S = 1.0
"""How often a waiting step looks whether it was cancelled."""
STOP_S = 2.0
"""A step killed (timeout, cancel) gets this long after SIGTERM."""
OUTPUT_JOIN_S = 10.0
BUILD_LOOK_S = 0.1
"""How often a build's time limit and the run's cancel are looked at."""
OPERATION_INDENT = "       "


class StepEngine(Protocol):
    """What the runner needs of the engine (`runtime.Engine` is one)."""

    def image_present(self, ref: str) -> bool: ...

    def pull(self, ref: str, auth: Credentials | None = None) -> Image: ...

    def run(self, spec: ContainerSpec) -> Instance: ...

    def wait(self, instance_id: str, timeout_s: float) -> int | None: ...

    def output(self, instance_id: str, *, follow: bool = False) -> OutputStream: ...

    def stop(self, instance_id: str, timeout_s: float = 10) -> None: ...

    def remove(self, instance_id: str) -> None: ...

    def list(self, labels: Mapping[str, str]) -> list[Instance]: ...


class ImageBuilder(Protocol):
    """What builds an image and pushes it to Baepo's registry (`builds.Builder`)."""

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
    ) -> str: ...

    def prune(self, repository: str, *, keep: str) -> list[str]: ...


class Deployments(Protocol):
    """What the runner needs of the control room's `Services`."""

    def identity(self, name: str, *, caller: Caller = ...) -> ServiceIdentity: ...

    def secrets(self, name: str, *, caller: Caller = ...) -> dict[str, str]: ...

    def deploy(
        self, name: str, image: str | None = None, *, caller: Caller = ...
    ) -> OperationView: ...

    def operation(self, operation_id: str, *, caller: Caller = ...) -> OperationView: ...


MayPull = Callable[[str, str], bool]
"""(owner, repository) → whether the service's owner may pull that repository of Baepo's
registry (a step's image is run with the owner's rights)."""


class Runner:
    def __init__(
        self,
        *,
        engine: StepEngine,
        builder: ImageBuilder,
        services: Deployments,
        deploy_branch: Callable[[str], str],
        clock: Clock,
        registry: RegistryLink,
        may_pull: MayPull,
        base_images: Mapping[str, str],
        installation: str,
        poll_s: float = 1.0,
        parse: Callable[[str], PipelineSpec] = parse_pipeline,
    ) -> None:
        """`deploy_branch(service)` is the branch that deploys (the settings'); `base_images`
        are apprunner.yaml's runtimes' images; `installation` labels the step containers as
        Baepo's (`LABEL_INSTALLATION`); `poll_s` is how often a deploy is looked at."""
        self._engine = engine
        self._builder = builder
        self._services = services
        self._deploy_branch = deploy_branch
        self._clock = clock
        self._registry = registry
        self._may_pull = may_pull
        self._base_images = dict(base_images)
        self._installation = installation
        self._poll_s = poll_s
        self._parse = parse

    def execute(self, run: RunView, job: RunJob) -> Outcome:
        try:
            return self._execute(run, job)
        except RunCancelled:
            return Outcome(RunStatus.CANCELLED, "cancelled")
        except RunFailed as exc:
            return Outcome(RunStatus.FAILED, str(exc))
        finally:
            shutil.rmtree(job.workspace, ignore_errors=True)

    def abandon(self, run_id: str) -> None:
        for container in self._engine.list({LABEL_RUN: run_id}):
            self._engine.remove(container.id)

    # -- the stages -----------------------------------------------------------------------

    def _execute(self, run: RunView, job: RunJob) -> Outcome:
        unpack(job.source, job.workspace)
        spec = self._pipeline(job)
        try:
            steps = spec.order(run.branch)
        except PipelineSpecError as exc:
            raise RunFailed(f"{PIPELINE_FILE}: {exc}") from exc
        owner = self._owner(run.service)
        if steps:
            job.log.stage(f"{len(steps)} steps on {run.branch}: {', '.join(s.name for s in steps)}")
        for step in steps:
            self._step(run, job, step, owner)
        deploy_branch = self._deploy_branch(run.service)
        if run.branch != deploy_branch:
            return Outcome(
                RunStatus.SUCCEEDED,
                f"{run.branch} is not the deploy branch ({deploy_branch}): nothing deployed",
            )
        if not spec.deploy:
            return Outcome(RunStatus.SUCCEEDED, f"{PIPELINE_FILE} says deploy: false")
        repository = f"{owner}/{run.service}"
        image = self._build(run, job, spec, repository)
        outcome = self._deploy(run, job, image)
        self._prune(job, repository, image)
        return outcome

    def _pipeline(self, job: RunJob) -> PipelineSpec:
        text = read_text(job.workspace, PIPELINE_FILE)
        if text is None:
            job.log.stage(f"no {PIPELINE_FILE}: build and deploy")
            return DEFAULT_PIPELINE
        try:
            return self._parse(text)
        except PipelineSpecError as exc:
            raise RunFailed(f"{PIPELINE_FILE}: {exc}") from exc

    def _owner(self, service: str) -> str:
        try:
            return self._services.identity(service).owner
        except ControlError as exc:
            raise RunFailed(str(exc)) from exc

    def _step(self, run: RunView, job: RunJob, step: Step, owner: str) -> None:
        job.log.stage(f"step {step.name} ({step.image})")
        env = dict(step.environment)
        if step.secrets:
            env.update(self._secrets(run.service, step))
            job.log.mask(env[name] for name in step.secrets)
        image = self._step_image(step, owner)
        if job.cancelled.is_set():
            raise RunCancelled
        job.step_started(step.name)
        started = self._clock.monotonic()
        try:
            container = self._engine.run(
                ContainerSpec(
                    image=image,
                    command=["/bin/sh", "-ec", step.script()],
                    env=env,
                    labels={
                        LABEL_RUN: run.id,
                        LABEL_STEP: step.name,
                        LABEL_INSTALLATION: self._installation,
                    },
                    cpu=step.cpu,
                    memory_mb=step.memory_mb,
                    mounts=(Mount(str(job.workspace.resolve()), WORKSPACE),),
                    workdir=WORKSPACE,
                )
            )
        except EngineError as exc:
            job.step_ended(step.name, StepStatus.FAILED, None)
            raise RunFailed(f"step {step.name} could not start: {exc}") from exc
        output = _Output(self._engine, container.id, job.log, step.name)
        try:
            code = self._wait(job, step, container.id)
        finally:
            output.finish()
            try:
                self._engine.remove(container.id)
            except EngineError as exc:
                log.warning("cannot remove step container %s: %s", container.id[:12], exc)
        took = self._clock.monotonic() - started
        if code is None:
            job.step_ended(step.name, StepStatus.CANCELLED, None)
            raise RunCancelled
        if code == "timeout":
            job.step_ended(step.name, StepStatus.FAILED, None)
            job.log.stage(f"step {step.name} timed out after {step.timeout_s:g} s")
            raise RunFailed(f"step {step.name} timed out after {step.timeout_s:g} s")
        if code != 0:
            job.step_ended(step.name, StepStatus.FAILED, code)
            job.log.stage(f"step {step.name} failed (exit code {code}) in {took:.1f} s")
            raise RunFailed(f"step {step.name} failed (exit code {code})")
        job.step_ended(step.name, StepStatus.SUCCEEDED, 0)
        job.log.stage(f"step {step.name} succeeded in {took:.1f} s")

    def _wait(self, job: RunJob, step: Step, container_id: str) -> int | Literal["timeout"] | None:
        """The step's exit code, "timeout", or None when cancelled (it is stopped then)."""
        deadline = self._clock.monotonic() + step.timeout_s
        while True:
            if job.cancelled.is_set():
                self._stop(container_id)
                return None
            left = deadline - self._clock.monotonic()
            if left <= 0:
                self._stop(container_id)
                return "timeout"
            try:
                code = self._engine.wait(container_id, min(WAIT_SLICE_S, left))
            except EngineError as exc:
                raise RunFailed(f"lost step {step.name}: {exc}") from exc
            if code is not None:
                return code

    def _stop(self, container_id: str) -> None:
        try:
            self._engine.stop(container_id, STOP_S)
        except EngineError as exc:
            log.warning("cannot stop step container %s: %s", container_id[:12], exc)

    def _secrets(self, service: str, step: Step) -> dict[str, str]:
        try:
            known = self._services.secrets(service)
        except ControlError as exc:
            raise RunFailed(str(exc)) from exc
        missing = [name for name in step.secrets if name not in known]
        if missing:
            raise RunFailed(f"step {step.name}: {service} has no secret {', '.join(missing)}")
        return {name: known[name] for name in step.secrets}

    def _step_image(self, step: Step, owner: str) -> str:
        """What the engine runs for the step's image: pulled first if it must be, from
        Baepo's registry only what the owner may pull."""
        try:
            name = Reference.parse(step.image)
        except InvalidReference as exc:
            raise RunFailed(f"step {step.name}: {step.image!r} is no image: {exc}") from exc
        ref, auth = step.image, None
        if self._registry.owns(name):
            if not self._may_pull(owner, name.path):
                raise RunFailed(f"step {step.name}: {owner} may not pull {step.image}")
            ref, auth = self._registry.runnable(step.image, None), self._registry.auth_for(name)
        try:
            if not self._engine.image_present(ref):
                self._engine.pull(ref, auth)
        except EngineError as exc:
            raise RunFailed(f"step {step.name}: cannot pull {step.image}: {exc}") from exc
        return ref

    def _build(self, run: RunView, job: RunJob, spec: PipelineSpec, repository: str) -> str:
        dockerfile = PurePosixPath(spec.build.dockerfile)
        text: str | None = None
        inside = _relative_to(dockerfile, PurePosixPath(spec.build.context))
        if holds_file(job.workspace, str(dockerfile)):
            how = f"with {dockerfile}"
            if inside is None:  # outside the context: sent as a generated one
                text = read_text(job.workspace, str(dockerfile))
        else:
            config_text = read_text(job.workspace, APPRUNNER_FILE)
            if config_text is None:
                raise RunFailed(f"no {dockerfile} or {APPRUNNER_FILE}: nothing to build")
            try:
                config = parse_apprunner(config_text)
                text = dockerfile_for(config, self._base_images)
            except AppRunnerConfigError as exc:
                raise RunFailed(f"{APPRUNNER_FILE}: {exc}") from exc
            how = f"from {APPRUNNER_FILE} ({config.runtime})"
        job.log.stage(f"building {repository}:{run.commit[:12]} {how}")
        limit = _BuildLimit(self._clock, spec.build.timeout_s, job.cancelled)
        try:
            # The builder resolves the context inside the workspace (a link in the
            # repository cannot send it elsewhere on this machine).
            image = self._builder.build_and_push(
                job.workspace,
                repository=repository,
                tag=run.commit,
                dockerfile=str(inside or "Dockerfile"),
                dockerfile_text=text,
                context=spec.build.context,
                on_line=job.log.write,
                cancel=limit.stop,
            )
        except EngineError as exc:
            if job.cancelled.is_set():
                raise RunCancelled from exc
            if limit.expired:
                why = f"the build took longer than {spec.build.timeout_s:g} s (build.timeout)"
                job.log.stage(f"{why}: stopped")
                raise RunFailed(why) from exc
            raise RunFailed(f"the build failed: {exc}") from exc
        finally:
            limit.close()
        job.built(image)
        job.log.stage(f"pushed {image}")
        return image

    def _deploy(self, run: RunView, job: RunJob, image: str) -> Outcome:
        try:
            operation = self._services.deploy(run.service, image, caller=SYSTEM)
        except ControlError as exc:
            raise RunFailed(f"cannot deploy {run.service}: {exc}") from exc
        job.deploying(operation.id)
        job.log.stage(f"deploying {image} (operation {operation.id})")
        shown = 0
        while True:
            try:
                operation = self._services.operation(operation.id)
            except ControlError as exc:
                raise RunFailed(f"lost the deploy: {exc}") from exc
            for line in operation.log[shown:]:
                job.log.write(OPERATION_INDENT + line.line)
            shown = len(operation.log)
            if OperationStatus(operation.status).finished:
                break
            if job.cancelled.wait(self._poll_s):
                job.log.stage(f"no longer waiting for operation {operation.id}: it goes on")
                raise RunCancelled
        if operation.status != OperationStatus.SUCCEEDED:
            why = operation.message or operation.status
            raise RunFailed(f"the deploy failed: {why}; the service keeps its revision")
        return Outcome(RunStatus.SUCCEEDED, f"deployed {image} as revision {operation.revision}")

    def _prune(self, job: RunJob, repository: str, deployed: str) -> None:
        try:
            removed = self._builder.prune(repository, keep=deployed)
        except EngineError as exc:  # the run has succeeded: the next one tries again
            job.log.stage(f"cannot remove older images of {repository}: {exc}")
            return
        if removed:
            images = "image" if len(removed) == 1 else "images"
            job.log.stage(f"removed {len(removed)} older {images} of {repository} from the engine")


class _BuildLimit:
    """What stops a build: the run's cancel, or its time limit passing on the runner's clock.
    `stop` is the event the builder is handed; a thread sets it (and `expired`, for the
    limit), looking every `BUILD_LOOK_S` until it has or `close()` is called."""

    def __init__(self, clock: Clock, seconds: float, cancelled: threading.Event) -> None:
        self.stop = threading.Event()
        self.expired = False
        self._clock = clock
        self._deadline = clock.monotonic() + seconds
        self._cancelled = cancelled
        self._closed = threading.Event()
        threading.Thread(target=self._watch, name="baepo-build-limit", daemon=True).start()

    def _watch(self) -> None:
        while not self._closed.is_set():
            if self._cancelled.wait(BUILD_LOOK_S):
                self.stop.set()
                return
            if self._clock.monotonic() >= self._deadline:
                self.expired = True
                self.stop.set()
                return

    def close(self) -> None:
        self._closed.set()


class _Output:
    """A step's output copied into the run's log as it comes (a thread following it);
    `finish()`, once the step has exited, adds what the follow missed: an engine may end a
    follow before the last lines of a container that exits at once are stored."""

    def __init__(self, engine: StepEngine, container_id: str, log_: RunLog, name: str) -> None:
        self._engine = engine
        self._id = container_id
        self._log = log_
        self._copied = 0
        self._thread = threading.Thread(target=self._copy, name=f"baepo-step-{name}", daemon=True)
        self._thread.start()

    def _copy(self) -> None:
        try:
            stream = self._engine.output(self._id, follow=True)
        except EngineError as exc:
            log.info("cannot follow step container %s: %s", self._id[:12], exc)
            return
        try:
            for line in stream:
                self._log.write(line.text)
                self._copied += 1
        except EngineError as exc:
            log.info("lost the output of step container %s: %s", self._id[:12], exc)
        finally:
            stream.close()

    def finish(self) -> None:
        self._thread.join(OUTPUT_JOIN_S)
        if self._thread.is_alive():
            return  # still copying (an engine that does not end the follow): leave it be
        try:
            stream = self._engine.output(self._id)
            try:
                lines = list(stream)
            finally:
                stream.close()
        except EngineError as exc:
            self._log.stage(f"cannot read the step's output: {exc}")
            return
        for line in lines[self._copied :]:
            self._log.write(line.text)


def _relative_to(path: PurePosixPath, context: PurePosixPath) -> PurePosixPath | None:
    """`path` (from the repository's root) as a path inside `context`, None if outside."""
    if context in (PurePosixPath("."), PurePosixPath("")):
        return path
    try:
        return path.relative_to(context)
    except ValueError:
        return None
