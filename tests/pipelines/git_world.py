"""What the git remote's tests share: a fake of the runs store, a stand-in pipeline parser, a
git client that never reads the user's configuration, and a live server (real auth, real
uvicorn, real `git http-backend`) serving the git routes on a loopback port."""

from __future__ import annotations

import fnmatch
import itertools
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
import yaml
from fastapi import FastAPI

from baepo.api.git import git_routes
from baepo.auth import Auth
from baepo.clock import SystemClock
from baepo.connections import Limits, bounded_protocol
from baepo.control import Caller
from baepo.pipelines.git_http import BackendLimits
from baepo.pipelines.git_remote import GitRepositories
from baepo.pipelines.pushes import branch_filter
from baepo.schema import schema
from baepo.store import Database

DEADLINE_S = 60.0
PASSWORDS = {"admin": "admin-password-1", "alice": "alice-password-1", "bob": "bob-password-1"}
SERVICES = {"app": "alice", "other": "alice", "bobs": "bob"}
"""service → owner"""


# -- the runs store, faked -----------------------------------------------------------------


@dataclass
class Script:
    """What a fake run does: log lines, waiting on each event met on the way, then ends."""

    lines: Sequence[str | threading.Event] = ("ok",)
    status: str = "SUCCEEDED"
    message: str = ""


@dataclass
class FakeRun:
    id: str
    service: str
    number: int
    branch: str
    commit: str
    caller: Caller
    source: bytes
    status: str = "QUEUED"
    message: str = ""
    log: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.status not in ("QUEUED", "RUNNING")


class RunRefused(Exception):
    pass


class FakeRuns:
    """Runs the `Script` of a "service/branch" or a "branch" (else one that succeeds) in a
    thread of its own, as the real store runs a run."""

    def __init__(self) -> None:
        self.scripts: dict[str, Script] = {}
        self.runs: list[FakeRun] = []
        self.refuse: str | None = None
        self.followers: list[FakeFollower] = []
        self._numbers = itertools.count(1)
        self._changed = threading.Condition()

    def submit(
        self,
        service: str,
        *,
        source: Path,
        branch: str,
        commit: str,
        trigger: str,
        caller: Caller,
    ) -> FakeRun:
        assert trigger == "push"
        if self.refuse is not None:
            raise RunRefused(self.refuse)
        run = FakeRun(
            id=f"run{len(self.runs) + 1}",
            service=service,
            number=next(self._numbers),
            branch=branch,
            commit=commit,
            caller=caller,
            source=source.read_bytes(),
        )
        source.unlink()  # the real store moves it into its own directory
        with self._changed:
            self.runs.append(run)
        script = self.scripts.get(f"{service}/{branch}") or self.scripts.get(branch, Script())
        threading.Thread(target=self._execute, args=(run, script), daemon=True).start()
        return run

    def _execute(self, run: FakeRun, script: Script) -> None:
        self._set(run, status="RUNNING")
        for item in script.lines:
            if isinstance(item, threading.Event):
                item.wait(DEADLINE_S)
            else:
                with self._changed:
                    run.log.append(item)
                    self._changed.notify_all()
        self._set(run, status=script.status, message=script.message)

    def _set(self, run: FakeRun, **fields: str) -> None:
        with self._changed:
            for name, value in fields.items():
                setattr(run, name, value)
            self._changed.notify_all()

    def get(self, run_id: str, *, caller: Caller) -> FakeRun:
        return next(r for r in self.runs if r.id == run_id)

    def follow(self, run_id: str, *, caller: Caller, from_start: bool = True) -> FakeFollower:
        follower = FakeFollower(self.get(run_id, caller=caller), self._changed)
        self.followers.append(follower)
        return follower

    def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + DEADLINE_S
        with self._changed:
            while not condition():
                left = deadline - time.monotonic()
                assert left > 0, f"timed out waiting for {what}"
                self._changed.wait(left)


class FakeFollower:
    def __init__(self, run: FakeRun, changed: threading.Condition) -> None:
        self.run = run
        self._changed = changed
        self.closed = False

    def __iter__(self) -> Iterator[str]:
        sent = 0
        while True:
            with self._changed:
                while not self.closed and len(self.run.log) <= sent and not self.run.done:
                    self._changed.wait()
                if self.closed:
                    return
                fresh = self.run.log[sent:]
                finished = self.run.done
            yield from fresh
            sent += len(fresh)
            if finished and sent == len(self.run.log):
                return

    def close(self) -> None:
        with self._changed:
            self.closed = True
            self._changed.notify_all()


# -- a stand-in for pipelines/spec.py's parser --------------------------------------------


@dataclass(frozen=True)
class StandInStep:
    branches: tuple[str, ...]

    def runs_on(self, branch: str) -> bool:
        return not self.branches or any(fnmatch.fnmatchcase(branch, p) for p in self.branches)


@dataclass(frozen=True)
class StandInPipeline:
    steps: tuple[StandInStep, ...]


def parse_stand_in(text: str) -> StandInPipeline:
    """`steps: [{when: {branch: [patterns]}}]`: enough of baepo.yaml to say which branches
    run a step (ValueError for anything else)."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(str(exc)) from exc
    if not isinstance(document, dict) or not isinstance(document.get("steps", []), list):
        raise ValueError("steps: a list is required")
    steps = []
    for step in document.get("steps", []):
        when = step.get("when", {}) if isinstance(step, dict) else None
        if not isinstance(when, dict):
            raise ValueError("when: a mapping is required")
        steps.append(StandInStep(tuple(when.get("branch", ()))))
    return StandInPipeline(tuple(steps))


# -- the git client ------------------------------------------------------------------------


class GitClient:
    """The real git, with a home of its own: the user's configuration is never read or written,
    and it never prompts (a missing credential fails at once)."""

    def __init__(self, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.home = home
        config = home / "gitconfig"
        config.write_text(
            "[user]\n\tname = Test Pusher\n\temail = pusher@example.test\n"
            "[init]\n\tdefaultBranch = main\n"
            "[credential]\n\thelper =\n"
            "[advice]\n\tdetachedHead = false\n"
        )
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": str(config),
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "",
            "SSH_ASKPASS": "",
            "LC_ALL": "C",
        }

    def run(
        self, *args: str, cwd: Path | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=DEADLINE_S,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed:\n{done.stderr}")
        return done

    def start(self, *args: str, cwd: Path) -> subprocess.Popen[str]:
        """git in a process group of its own (git push runs git-remote-http beside it)."""
        return subprocess.Popen(
            ["git", *args],
            cwd=cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def work_tree(self, path: Path, files: dict[str, str | bytes]) -> str:
        """A new repository at `path` with one commit of `files`; the commit's id."""
        self.run("init", "--quiet", str(path))
        return self.commit(path, files)

    def commit(self, path: Path, files: dict[str, str | bytes], message: str = "change") -> str:
        for name, content in files.items():
            target = path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content)
        self.run("add", "--all", cwd=path)
        self.run("commit", "--quiet", "-m", message, cwd=path)
        return self.run("rev-parse", "HEAD", cwd=path).stdout.strip()


class Watched:
    """A running git command whose stderr is read as it comes."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def wait_for_line(self, text: str) -> None:
        deadline = time.monotonic() + DEADLINE_S
        with self._changed:
            while not any(text in line for line in self.lines):
                left = deadline - time.monotonic()
                assert left > 0, f"no line with {text!r} in:\n" + "\n".join(self.lines)
                self._changed.wait(left)

    def finish(self) -> tuple[int, str]:
        code = self.process.wait(DEADLINE_S)
        self._reader.join(DEADLINE_S)
        return code, "\n".join(self.lines)


# -- the server ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveGit:
    """The git routes on a real uvicorn (with Baepo's bounded HTTP protocol) and a real Auth."""

    def __init__(self, root: Path, runs: FakeRuns, limits: BackendLimits = BackendLimits()) -> None:
        self.root = root
        self.runs = runs
        root.mkdir(parents=True, exist_ok=True)
        db = Database(f"sqlite:///{root / 'baepo.db'}")
        db.migrate(schema())
        self.auth = Auth(db, b"k" * 32, SystemClock())
        self.auth.ensure_admin(PASSWORDS["admin"])
        self.auth.create_user("alice", PASSWORDS["alice"])
        self.auth.create_user("bob", PASSWORDS["bob"])
        self.repositories = GitRepositories(root / "git")
        self.services = dict(SERVICES)
        """service → owner: a service made again by another owner is another incarnation"""
        wanted = branch_filter(lambda service: "main", parse_stand_in)
        routes = git_routes(
            self.auth,
            self.lookup,
            self.repositories,
            runs,
            wanted,
            spool=root / "spool",
            limits=limits,
            refused=(RunRefused,),
        )
        self.backend_pids = _backend_pids(routes)
        app = FastAPI()
        app.router.routes.extend(routes)
        self.port = free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            http=bounded_protocol(Limits(max_connections=256, header_s=10, body_idle_s=30)),
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def lookup(self, name: str, caller: Caller) -> str | None:
        """The control room's answer, for the services of `services`."""
        owner = self.services.get(name)
        return owner if owner is not None and caller.reaches(name, owner) else None

    def token(self, user: str, name: str, **limits: tuple[str, ...]) -> str:
        made = self.auth.create_token(user, name, **limits)
        assert made.secret is not None
        return made.secret

    def url(self, service: str, user: str | None = None, secret: str | None = None) -> str:
        who = f"{user}:{secret}@" if user is not None else ""
        return f"http://{who}127.0.0.1:{self.port}/git/{service}.git"

    def wait_until_idle(self) -> None:
        """Until no git backend runs (each one's request may be answered a moment before its
        process is reaped)."""
        deadline = time.monotonic() + DEADLINE_S
        while self.backend_pids():
            assert time.monotonic() < deadline, f"backends still running: {self.backend_pids()}"
            time.sleep(0.01)

    def __enter__(self) -> LiveGit:
        self.thread.start()
        deadline = time.monotonic() + DEADLINE_S
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=DEADLINE_S)


def _backend_pids(routes: Sequence[Any]) -> Callable[[], list[int]]:
    """The process ids of the backends the git route runs now (to kill one, by id)."""
    remote = routes[0].app
    return lambda: list(remote.backend.running)
