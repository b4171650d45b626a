"""`Runs`: the pipeline runs of every service, their queue, and their logs.

A run is submitted with the tree of one commit (a tar: from a `git push`, a webhook's fetch,
or the source of an earlier run for a re-run), waits its turn, and is executed by the runner
(`runner.py`: steps, build, push, deploy). Its status (the tables' docstring draws the state
machine) lives in the database; its log in a file (`run_logs.py`); its source is kept as
`<data>/pipelines/sources/<run id>.tar` for a re-run (of the last `KEEP_SOURCES` runs of each
service).

The queue:
- One run of a service executes at a time; the others wait QUEUED, oldest first.
- Runs of different services execute side by side, `workers` at most.
- A run submitted for a branch supersedes the runs of the same service and branch that still
  wait (SUPERSEDED): the newest commit is the one that matters.
- A cancelled run that waits ends at once (CANCELLED); one that executes is told to stop (its
  step container is killed, a build broken off, a deploy no longer waited for) and ends
  CANCELLED when the runner has stopped.
- When Baepo starts (`start`), the runs it finds RUNNING were cut short by its end: they are
  FAILED ("Baepo restarted") and whatever they left on the engine is removed; the QUEUED ones
  go on waiting and then run.

Who may do what is decided by the API (the services' rights: reading a run is reading its
service, submitting, cancelling and re-running are deploying it); here the `Caller` says which
services it reaches: another's run answers `RunNotFound`, as if it did not exist.
"""

from __future__ import annotations

import builtins
import functools
import logging
import shutil
import threading
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from baepo.clock import Clock
from baepo.control import SYSTEM, Caller, ServiceIdentity
from baepo.pipelines import records
from baepo.pipelines.errors import (
    PipelinesUnavailable,
    RunFinished,
    RunNotFound,
    SourceMissing,
)
from baepo.pipelines.run_logs import RunLog, RunLogFollower
from baepo.pipelines.tables import RunRow
from baepo.store import Database

log = logging.getLogger(__name__)

TRIGGERS = frozenset({"push", "github", "gitea", "gitlab", "rerun", "api"})
KEEP_SOURCES = 10
"""Sources kept per service (the newest runs'); an older run cannot be re-run."""
MAX_LIST = 500


class RunStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    SUPERSEDED = "SUPERSEDED"

    @property
    def finished(self) -> bool:
        return self not in (RunStatus.QUEUED, RunStatus.RUNNING)


class StepStatus(StrEnum):
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True)
class StepView:
    name: str
    status: str
    exit_code: int | None
    started_at: datetime | None
    ended_at: datetime | None


@dataclass(frozen=True)
class RunView:
    id: str
    service: str
    number: int
    trigger: str
    caller: str
    branch: str
    commit: str
    status: str
    message: str
    steps: tuple[StepView, ...]
    image: str | None
    operation_id: str | None
    rerun_of: str | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None

    @property
    def done(self) -> bool:
        return RunStatus(self.status).finished


@dataclass(frozen=True)
class Outcome:
    """How the runner says a run ended."""

    status: RunStatus
    message: str


class ServiceDirectory(Protocol):
    """What the runs need of the control room's `Services`: whether a caller reaches a live
    service, and its owner (a database read: the engine is not asked)."""

    def identity(self, name: str, *, caller: Caller = ...) -> ServiceIdentity: ...


class Execution(Protocol):
    """What executes a run (`runner.Runner`)."""

    def execute(self, run: RunView, job: RunJob) -> Outcome:
        """Run it to its end; `job` is where its log, steps and results go."""
        ...

    def abandon(self, run_id: str) -> None:
        """Remove what a run cut short left behind (its step containers, its workspace)."""
        ...


Spawn = Callable[[Callable[[], None], str], None]


def _thread(target: Callable[[], None], name: str) -> None:
    threading.Thread(target=target, name=name, daemon=True).start()


@dataclass(frozen=True)
class Waiting:
    """A queued run, as the queue sees it."""

    id: str
    service: str


def choose(queued: Sequence[Waiting], busy: set[str], free: int) -> list[str]:
    """The queued runs (oldest first) to start now: the oldest of each service none of whose
    runs executes, `free` at most."""
    chosen: list[str] = []
    taken = set(busy)
    for run in queued:
        if len(chosen) >= free:
            break
        if run.service not in taken:
            taken.add(run.service)
            chosen.append(run.id)
    return chosen


class RunJob:
    """One executing run, as the runner sees it: its source, its workspace, its log, whether
    it was cancelled, and where its steps and results are recorded."""

    def __init__(self, runs: Runs, run_id: str, source: Path, workspace: Path, log: RunLog) -> None:
        self.source = source
        self.workspace = workspace
        self.log = log
        self.cancelled = threading.Event()
        self._runs = runs
        self._id = run_id

    def step_started(self, name: str) -> None:
        now = self._runs.clock.now()
        step: dict[str, Any] = {"name": name, "status": StepStatus.RUNNING.value}
        step |= {"exit_code": None, "started_at": now, "ended_at": None}
        self._runs._edit(self._id, lambda row: _add_step(row, step))

    def step_ended(self, name: str, status: StepStatus, exit_code: int | None) -> None:
        now = self._runs.clock.now()
        change = {"status": status.value, "exit_code": exit_code, "ended_at": now}
        self._runs._edit(self._id, lambda row: _change_step(row, name, change))

    def built(self, image: str) -> None:
        self._runs._edit(self._id, lambda row: setattr(row, "image", image))

    def deploying(self, operation_id: str) -> None:
        self._runs._edit(self._id, lambda row: setattr(row, "operation_id", operation_id))


@dataclass
class _Active:
    job: RunJob
    service: str


@dataclass
class _Layout:
    root: Path
    logs: Path = field(init=False)
    sources: Path = field(init=False)
    work: Path = field(init=False)

    def __post_init__(self) -> None:
        self.logs, self.sources, self.work = (self.root / n for n in ("logs", "sources", "work"))

    def log(self, run_id: str) -> Path:
        return self.logs / f"{run_id}.log"

    def source(self, run_id: str) -> Path:
        return self.sources / f"{run_id}.tar"


class Runs:
    """The store and the queue of runs (thread-safe); `start()` it once the server runs."""

    def __init__(
        self,
        *,
        db: Database,
        services: ServiceDirectory,
        runner: Execution,
        clock: Clock,
        directory: Path,
        workers: int = 2,
        spawn: Spawn = _thread,
    ) -> None:
        self.clock = clock
        self._db = db
        self._services = services
        self._runner = runner
        self._dirs = _Layout(directory)
        self._workers = max(1, workers)
        self._spawn = spawn
        self._lock = threading.RLock()
        self._logs: dict[str, RunLog] = {}  # runs that may still write: queued or executing
        self._active: dict[str, _Active] = {}
        self._started = False
        self._stopped = False

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Fail the runs a previous process left RUNNING, then start the queue."""
        for path in (self._dirs.logs, self._dirs.sources, self._dirs.work):
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise PipelinesUnavailable(f"cannot make {path}: {exc}") from exc
        with self._lock:
            with self._session() as s, s.begin():
                cut = s.scalars(sa.select(RunRow).where(RunRow.status == RunStatus.RUNNING)).all()
                for row in cut:
                    self._end_row(row, RunStatus.FAILED, "Baepo restarted while the run executed")
                    _close_steps(row, StepStatus.FAILED, self.clock.now())
                cut_ids = [row.id for row in cut]
                waiting = s.scalars(sa.select(RunRow.id).where(_waiting())).all()
            for run_id in cut_ids:
                cut_log = RunLog(self._dirs.log(run_id))
                cut_log.stage("FAILED: Baepo restarted while the run executed")
                cut_log.end()
            for run_id in waiting:
                self._logs.setdefault(run_id, RunLog(self._dirs.log(run_id)))
            self._started = True
        # Workspaces are the executing runs' only: none executes yet.
        for workspace in self._dirs.work.iterdir():
            shutil.rmtree(workspace, ignore_errors=True)
        for run_id in cut_ids:
            try:
                self._runner.abandon(run_id)
            except Exception:  # what is left is removed at the next start
                log.exception("cannot clean up after run %s", run_id)
        self._dispatch()

    def stop(self) -> None:
        """Start no more runs (those executing go on until the process ends)."""
        with self._lock:
            self._stopped = True

    # -- requests -------------------------------------------------------------------------

    def submit(
        self,
        service: str,
        *,
        source: Path,
        branch: str,
        commit: str,
        trigger: str,
        caller: Caller,
        rerun_of: str | None = None,
    ) -> RunView:
        """Queue a run of `service`'s pipeline for `commit` of `branch`; `source` (a tar of the
        commit's tree) is moved into the room's directory. Queued runs of the same branch are
        superseded. `ServiceNotFound` if the caller does not reach a live service of that
        name."""
        if trigger not in TRIGGERS:
            raise ValueError(f"unknown trigger {trigger!r}")
        owner = self._services.identity(service, caller=caller).owner
        run_id = uuid.uuid4().hex
        self._keep_source(source, run_id)
        superseded: builtins.list[str] = []
        with self._lock:
            try:
                with self._session() as s, s.begin():
                    last = s.scalar(
                        sa.select(sa.func.max(RunRow.number)).where(RunRow.service == service)
                    )
                    number = (last or 0) + 1
                    waiting = s.scalars(
                        sa.select(RunRow).where(
                            _waiting(), RunRow.service == service, RunRow.branch == branch
                        )
                    ).all()
                    for row in waiting:
                        self._end_row(row, RunStatus.SUPERSEDED, f"superseded by run #{number}")
                        superseded.append(row.id)
                    row = RunRow(
                        id=run_id,
                        service=service,
                        owner=owner,
                        number=number,
                        trigger=trigger,
                        caller=caller.name,
                        branch=branch,
                        commit=commit,
                        status=RunStatus.QUEUED.value,
                        message="",
                        steps=[],
                        rerun_of=rerun_of,
                        created_at=self.clock.now(),
                    )
                    s.add(row)
                    s.flush()
            except BaseException:
                self._dirs.source(run_id).unlink(missing_ok=True)
                raise
            for old in superseded:
                self._end_log(old, f"SUPERSEDED by run #{number} ({commit[:12]})")
            new_log = self._logs[run_id] = RunLog(self._dirs.log(run_id))
        trigger_words = f"re-run of {rerun_of}" if rerun_of else trigger
        new_log.stage(f"run #{number} of {service}: {branch} {commit[:12]} ({trigger_words})")
        self._prune_sources(service)
        self._dispatch()
        return self.get(run_id, caller=SYSTEM)

    def get(self, run_id: str, *, caller: Caller) -> RunView:
        with self._session() as s:
            return _view(self._row(s, run_id, caller))

    def list(
        self, service: str | None = None, *, caller: Caller, limit: int = 50
    ) -> builtins.list[RunView]:
        """Newest first, the runs the caller reaches (of deleted services too)."""
        limit = max(0, min(limit, MAX_LIST))
        query = sa.select(RunRow).order_by(RunRow.created_at.desc(), RunRow.number.desc())
        if service is not None:
            query = query.where(RunRow.service == service)
        if caller.owners is not None:
            query = query.where(RunRow.owner.in_(caller.owners))
        if caller.services is not None:
            query = query.where(RunRow.service.in_(caller.services))
        with self._session() as s:
            return [_view(row) for row in s.scalars(query.limit(limit))]

    def cancel(self, run_id: str, *, caller: Caller) -> RunView:
        """A waiting run ends CANCELLED now; an executing one is told to stop."""
        with self._lock:
            with self._session() as s, s.begin():
                row = self._row(s, run_id, caller)
                status = RunStatus(row.status)
                if status.finished:
                    raise RunFinished(f"run #{row.number} of {row.service} has ended ({status})")
                words = f"cancelled by {caller.name}"
                if status is RunStatus.QUEUED:
                    self._end_row(row, RunStatus.CANCELLED, words)
                else:
                    row.message = f"{words}; stopping"
            active = self._active.get(run_id)
            if status is RunStatus.QUEUED:
                self._end_log(run_id, f"CANCELLED by {caller.name}")
            elif active is not None:
                active.job.log.stage(f"cancel requested by {caller.name}")
                active.job.cancelled.set()
        return self.get(run_id, caller=caller)

    def rerun(self, run_id: str, *, caller: Caller) -> RunView:
        """Run the same commit again, as a new run."""
        original = self.get(run_id, caller=caller)
        kept = self._dirs.source(run_id)
        copy = self._dirs.sources / f".rerun-{uuid.uuid4().hex}.tar"
        try:
            shutil.copyfile(kept, copy)
        except FileNotFoundError:
            raise SourceMissing(
                f"the source of run #{original.number} is no longer kept: push the commit again"
            ) from None
        except OSError as exc:
            raise PipelinesUnavailable(f"cannot copy the source of the run: {exc}") from exc
        try:
            return self.submit(
                original.service,
                source=copy,
                branch=original.branch,
                commit=original.commit,
                trigger="rerun",
                caller=caller,
                rerun_of=original.id,
            )
        finally:
            copy.unlink(missing_ok=True)

    def follow(
        self, run_id: str, *, caller: Caller, from_start: bool = True
    ) -> RunLogFollower[RunView]:
        """The run's log lines from its start (or from now), then live, ending with the run."""
        self.get(run_id, caller=caller)  # RunNotFound
        with self._lock:
            writer = self._logs.get(run_id)
        path = self._dirs.log(run_id)
        if from_start:
            start = 0
        elif writer is not None:
            start = writer.size
        else:
            start = path.stat().st_size if path.exists() else 0
        return RunLogFollower(path, writer, start, lambda: self.get(run_id, caller=SYSTEM))

    def log_path(self, run_id: str, *, caller: Caller) -> Path:
        """Where the run's log is (it may not exist yet: a run that waits has written none)."""
        self.get(run_id, caller=caller)
        return self._dirs.log(run_id)

    # -- the queue ------------------------------------------------------------------------

    def _dispatch(self) -> None:
        """Start the runs whose turn it is."""
        with self._lock:
            if not self._started or self._stopped:
                return
            free = self._workers - len(self._active)
            if free <= 0:
                return
            busy = {a.service for a in self._active.values()}
            with self._session() as s, s.begin():
                rows = s.scalars(
                    sa.select(RunRow).where(_waiting()).order_by(RunRow.created_at, RunRow.number)
                ).all()
                chosen = set(choose([Waiting(r.id, r.service) for r in rows], busy, free))
                starting = [row for row in rows if row.id in chosen]
                for row in starting:
                    row.status = RunStatus.RUNNING.value
                    row.started_at = self.clock.now()
                views = [_view(row) for row in starting]
            for view in views:
                writer = self._logs.setdefault(view.id, RunLog(self._dirs.log(view.id)))
                job = RunJob(
                    self,
                    view.id,
                    self._dirs.source(view.id),
                    self._dirs.work / view.id,
                    writer,
                )
                self._active[view.id] = _Active(job, view.service)
                self._spawn(functools.partial(self._execute, view, job), f"baepo-run-{view.id}")

    def _execute(self, view: RunView, job: RunJob) -> None:
        try:
            outcome = self._runner.execute(view, job)
        except Exception as exc:  # a bug in the runner: the run ends, the queue goes on
            log.exception("run %s of %s", view.id, view.service)
            outcome = Outcome(RunStatus.FAILED, f"internal error: {exc}")
        try:
            with self._lock:
                with self._session() as s, s.begin():
                    row = s.get(RunRow, view.id)
                    assert row is not None, "runs are never deleted"
                    if job.cancelled.is_set() and outcome.status is not RunStatus.SUCCEEDED:
                        # Who cancelled it, as `cancel` recorded it.
                        words = row.message.removesuffix("; stopping") or outcome.message
                        outcome = Outcome(RunStatus.CANCELLED, words)
                    self._end_row(row, outcome.status, outcome.message)
                    _close_steps(row, _step_status(outcome.status), self.clock.now())
                    took = self.clock.now() - (row.started_at or self.clock.now())
                ended = f"{outcome.status} in {took.total_seconds():.1f} s"
                self._end_log(view.id, f"{ended}: {outcome.message}" if outcome.message else ended)
        except Exception:  # the database: the run stays RUNNING until the next start
            log.exception("cannot record the end of run %s", view.id)
        finally:
            with self._lock:
                self._active.pop(view.id, None)
                self._logs.pop(view.id, None)
        self._dispatch()

    # -- internals ------------------------------------------------------------------------

    def _edit(self, run_id: str, change: Callable[[RunRow], Any]) -> None:
        """Record something an executing run did."""
        with self._lock, self._session() as s, s.begin():
            row = s.get(RunRow, run_id)
            if row is not None:
                change(row)

    def _end_row(self, row: RunRow, status: RunStatus, message: str) -> None:
        row.status = status.value
        row.message = message
        row.ended_at = self.clock.now()
        if row.started_at is None:
            row.started_at = row.ended_at

    def _end_log(self, run_id: str, line: str) -> None:
        writer = self._logs.pop(run_id, None) or RunLog(self._dirs.log(run_id))
        writer.stage(line)
        writer.end()

    def _row(self, s: Session, run_id: str, caller: Caller) -> RunRow:
        row = s.get(RunRow, run_id)
        if row is None or not caller.reaches(row.service, row.owner):
            raise RunNotFound(f"no run {run_id[:64]!r}")
        return row

    def _keep_source(self, source: Path, run_id: str) -> None:
        try:
            self._dirs.sources.mkdir(parents=True, exist_ok=True)
            shutil.move(source, self._dirs.source(run_id))
        except OSError as exc:
            raise PipelinesUnavailable(f"cannot keep the run's source {source}: {exc}") from exc

    def _prune_sources(self, service: str) -> None:
        with self._session() as s:
            old = s.scalars(
                sa.select(RunRow.id)
                .where(RunRow.service == service)
                .order_by(RunRow.number.desc())
                .offset(KEEP_SOURCES)
            ).all()
        with self._lock:
            for run_id in old:
                if run_id not in self._logs:  # never one that waits or executes
                    self._dirs.source(run_id).unlink(missing_ok=True)

    def _session(self) -> AbstractContextManager[Session]:
        return records.session(self._db)


def _waiting() -> sa.ColumnElement[bool]:
    return RunRow.status == RunStatus.QUEUED.value


def _step_status(status: RunStatus) -> StepStatus:
    return StepStatus.CANCELLED if status is RunStatus.CANCELLED else StepStatus.FAILED


def _add_step(row: RunRow, step: dict[str, Any]) -> None:
    row.steps = [*row.steps, _stored(step)]


def _change_step(row: RunRow, name: str, change: dict[str, Any]) -> None:
    row.steps = [
        {**step, **_stored(change)} if step["name"] == name and step["ended_at"] is None else step
        for step in row.steps
    ]


def _close_steps(row: RunRow, status: StepStatus, now: datetime) -> None:
    """Steps still RUNNING when the run ended ended with it."""
    row.steps = [
        {**step, "status": status.value, "ended_at": now.isoformat()}
        if step["status"] == StepStatus.RUNNING
        else step
        for step in row.steps
    ]


def _stored(step: dict[str, Any]) -> dict[str, Any]:
    """JSON-ready: times as RFC 3339 text."""
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in step.items()}


def _time(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _view(row: RunRow) -> RunView:
    return RunView(
        id=row.id,
        service=row.service,
        number=row.number,
        trigger=row.trigger,
        caller=row.caller,
        branch=row.branch,
        commit=row.commit,
        status=row.status,
        message=row.message,
        steps=tuple(
            StepView(
                name=str(step["name"]),
                status=str(step["status"]),
                exit_code=step.get("exit_code"),
                started_at=_time(step.get("started_at")),
                ended_at=_time(step.get("ended_at")),
            )
            for step in row.steps
        ),
        image=row.image,
        operation_id=row.operation_id,
        rerun_of=row.rerun_of,
        created_at=row.created_at,
        started_at=row.started_at,
        ended_at=row.ended_at,
    )
