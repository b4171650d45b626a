"""Fakes for the runs' unit tests: a database, the services a caller reaches, a runner whose
runs end when the test says, and source tars made from a dict of files."""

from __future__ import annotations

import io
import tarfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from baepo.clock import FakeClock
from baepo.control import SYSTEM, Caller, ServiceIdentity, ServiceNotFound
from baepo.pipelines.runs import Execution, Outcome, RunJob, Runs, RunStatus, RunView
from baepo.schema import schema
from baepo.store import Database

ALICE = Caller("alice", frozenset({"alice"}))
BOB = Caller("bob", frozenset({"bob"}))


def database(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'baepo.db'}")
    db.migrate(schema())
    return db


@dataclass
class Directory:
    """The live services (name → owner), as `Services.identity` answers a caller."""

    owners: dict[str, str] = field(default_factory=dict)

    def identity(self, name: str, *, caller: Caller = SYSTEM) -> ServiceIdentity:
        owner = self.owners.get(name)
        if owner is None or not caller.reaches(name, owner):
            raise ServiceNotFound(f"no service named {name!r}")
        return ServiceIdentity(name, owner, datetime(2026, 1, 1, tzinfo=UTC))


def source_tar(path: Path, files: Mapping[str, str]) -> Path:
    """A tar of `files` (path → text), as `git archive` makes one."""
    with tarfile.open(path, "w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return path


class GatedRunner:
    """Runs that write a line and wait until the test opens their gate (by commit), then end
    as `outcomes` says (SUCCEEDED by default), or CANCELLED once cancelled."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.abandoned: list[str] = []
        self.outcomes: dict[str, Outcome] = {}
        self.raises: dict[str, Exception] = {}
        self._gates: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def gate(self, commit: str) -> threading.Event:
        with self._lock:
            return self._gates.setdefault(commit, threading.Event())

    def open(self, commit: str) -> None:
        self.gate(commit).set()

    def execute(self, run: RunView, job: RunJob) -> Outcome:
        with self._lock:
            self.started.append(run.commit)
        job.log.write(f"working on {run.commit}")
        job.step_started("work")
        gate = self.gate(run.commit)
        while not gate.wait(0.005):
            if job.cancelled.is_set():
                return Outcome(RunStatus.CANCELLED, "cancelled")
        job.log.write(f"done with {run.commit}")
        if run.commit in self.raises:
            raise self.raises[run.commit]
        return self.outcomes.get(run.commit, Outcome(RunStatus.SUCCEEDED, "all good"))

    def abandon(self, run_id: str) -> None:
        self.abandoned.append(run_id)


@dataclass
class RunsWorld:
    db: Database
    clock: FakeClock
    directory: Directory
    root: Path
    runs: Runs
    tmp: Path

    def submit(
        self,
        commit: str,
        service: str = "app",
        branch: str = "main",
        caller: Caller = ALICE,
        files: Mapping[str, str] | None = None,
    ) -> RunView:
        tar = source_tar(self.tmp / f"{commit}-{service}.tar", files or {"README": commit})
        self.clock.advance(1)
        return self.runs.submit(
            service, source=tar, branch=branch, commit=commit, trigger="push", caller=caller
        )


def world(tmp_path: Path, runner: Execution, workers: int = 2) -> RunsWorld:
    db = database(tmp_path)
    clock = FakeClock()
    directory = Directory({"app": "alice", "web": "alice", "api": "alice", "other": "bob"})
    root = tmp_path / "pipelines"
    runs = Runs(
        db=db, services=directory, runner=runner, clock=clock, directory=root, workers=workers
    )
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    return RunsWorld(db, clock, directory, root, runs, uploads)
