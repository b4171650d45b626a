"""The services' git repositories: one bare repository per service, made on first use.

On disk, under the root Baepo gives (`<data>/git`):

    git/
    ├── app.git/                    a bare repository (`git init --bare`)
    │   ├── baepo-service           which service it belongs to: the service's incarnation
    │   ├── config                  http.receivepack = true (pushes come through Baepo's auth)
    │   └── hooks/pre-receive       `exec <python> -I <baepo>/pipelines/hook.py`: each pushed
    │                               branch is sent to Baepo's push endpoint, which runs the
    │                               pipeline; the push is accepted only if its run succeeded
    ├── .new-app-<random>/          a repository being made (renamed into place when complete)
    └── .old-app-<random>/          a deleted service's repository, being removed

A repository belongs to one incarnation of a service (a string the caller gives: its owner and
creation time), not to its name: a service deleted and made again, perhaps by someone else,
starts with an empty repository, and nobody reads the code pushed to the one before.

A repository is made whole or not at all: it is created beside its final name and renamed, so
two first pushes at once, or a crash half-way, never leave a repository without its hook. The
hook is written again whenever its text differs (Baepo moved to another Python or another
path), so that an old repository never runs a program that is no longer there.

The hook is run by file path, not as `-m baepo.pipelines.hook`: it needs nothing but the
standard library, so it starts fast and whatever environment `git` gives it (no PYTHONPATH, no
virtualenv activation) is enough.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from baepo.pipelines import hook

SERVICE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62})$")
"""What may name a repository: a service name (the control room's are stricter)."""
GIT_TIMEOUT_S = 30.0
MARK = "baepo-service"


class RepositoryError(Exception):
    """A repository cannot be made or used (the disk, git missing, a bad name)."""


def _mark(repository: Path) -> str | None:
    """The incarnation a repository belongs to; None when there is no repository."""
    try:
        return (repository / MARK).read_text()
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return ""


def hook_text(python: str = sys.executable, program: Path | None = None) -> str:
    """The pre-receive hook: a shell script that hands over to Baepo's hook program."""
    path = program or Path(hook.__file__).resolve()
    return (
        "#!/bin/sh\n"
        "# Written by Baepo: sends each pushed branch to its pipeline (baepo.pipelines.hook).\n"
        f"exec {shlex.quote(python)} -I {shlex.quote(str(path))}\n"
    )


def git_environment() -> dict[str, str]:
    """The environment Baepo runs git in: no user's or system's configuration is read."""
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": "/nonexistent",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "LC_ALL": "C",
    }


class GitRepositories:
    """The bare repositories under `root`, one per service (`<root>/<service>.git`)."""

    def __init__(self, root: Path, *, python: str = sys.executable, git: str = "git") -> None:
        self.root = root
        self._git = git
        self._hook = hook_text(python)
        self._lock = threading.Lock()

    def path(self, service: str) -> Path:
        if not SERVICE_NAME.match(service):
            raise RepositoryError(f"{service!r} cannot name a repository")
        return self.root / f"{service}.git"

    def exists(self, service: str, incarnation: str) -> bool:
        """Whether this incarnation of the service has its repository."""
        return _mark(self.path(service)) == incarnation

    def ensure(self, service: str, incarnation: str) -> Path:
        """The repository of this incarnation of the service, made (with its hook) if it is
        not there yet; one left by an earlier service of that name is removed first."""
        path = self.path(service)
        with self._lock:
            try:
                mark = _mark(path)
                if mark != incarnation:
                    if path.exists():
                        self._remove(service, path)
                    self._create(service, path, incarnation)
                self._install_hook(path)
            except OSError as exc:
                raise RepositoryError(f"cannot make the repository of {service}: {exc}") from exc
        return path

    def _remove(self, service: str, path: Path) -> None:
        old = Path(tempfile.mkdtemp(prefix=f".old-{service}-", dir=self.root))
        path.rename(old / path.name)
        shutil.rmtree(old)

    def _create(self, service: str, path: Path, incarnation: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".new-{service}-", dir=self.root))
        try:
            self._run("init", "--quiet", "--bare", "--initial-branch=main", str(work))
            self._run("--git-dir", str(work), "config", "http.receivepack", "true")
            for sample in (work / "hooks").glob("*.sample"):
                sample.unlink()
            self._install_hook(work)
            (work / MARK).write_text(incarnation)
            work.rename(path)
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)

    def _install_hook(self, repository: Path) -> None:
        hook_path = repository / "hooks" / "pre-receive"
        try:
            if hook_path.read_text() == self._hook:
                return
        except FileNotFoundError:
            pass
        hook_path.parent.mkdir(exist_ok=True)
        partial = hook_path.with_name(".pre-receive.new")
        partial.write_text(self._hook)
        partial.chmod(0o755)
        partial.replace(hook_path)

    def _run(self, *args: str) -> None:
        try:
            subprocess.run(
                [self._git, *args],
                env=git_environment(),
                check=True,
                capture_output=True,
                timeout=GIT_TIMEOUT_S,
            )
        except subprocess.CalledProcessError as exc:
            detail = exc.stderr.decode(errors="replace").strip()
            raise RepositoryError(f"git {args[0]} failed: {detail}") from exc
        except (subprocess.TimeoutExpired, OSError) as exc:
            raise RepositoryError(f"git {args[0]} failed: {exc}") from exc
