"""Fetching one commit from a git URL into a tar of its tree, with the real git client.

A webhook names a commit; the service's source URL (set by its owner, never taken from the
webhook) says where it lives. The URL is someone's input and the fetch runs on Baepo's machine,
so it is fenced in:

- http and https only (`GIT_ALLOW_PROTOCOL`): no `file://`, no ssh, no `ext::`, also not
  through a redirect or a submodule; redirects are not followed at all.
- The host is resolved once, here, and must not be this machine or a private network
  (`baepo.auth.rights.internal_address`, the same fence as images pulled from a registry)
  unless the caller allows it; git is then pinned to the addresses checked
  (`http.curloptResolve`), so a DNS answer that changes in between cannot move it. The
  lookup runs in a thread of its own and is waited for until the fetch's deadline: a
  resolver that does not answer keeps that thread until the system's resolver gives up,
  never the fetch.
- git runs with no system or global config, no credential helper, no terminal prompt, and
  an environment of its own (no proxy variables: Baepo's own are not the repository's).
- Bounded in time (the whole fetch, all attempts, one deadline; the process group is killed)
  and in size (no file git writes, pack or tar, may pass `max_bytes`: `prlimit --fsize`).

How a commit is asked for, first that works: `fetch --depth=1 <commit>` (smart HTTP with
protocol v2 or `uploadpack.allowReachableSHA1InWant`, as GitHub, Gitea and GitLab serve), then
`fetch <commit>` (dumb HTTP has no shallow fetch), then the whole branch the webhook named (an
older server that only gives advertised refs). Then `git archive` writes the tree as a tar.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from baepo.auth.rights import internal_address, literal_addresses
from baepo.pipelines.errors import FetchFailed

DEFAULT_MAX_BYTES = 512 * 1024 * 1024
_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_XFSZ = -signal.SIGXFSZ
_GIT_CONFIG = (
    "http.followRedirects=false",
    "protocol.version=2",
    "transfer.fsckObjects=true",
    "fetch.recurseSubmodules=false",
    "credential.helper=",
    "core.hooksPath=/dev/null",
    "advice.detachedHead=false",
)

Resolve = Callable[[str, int], Sequence[str]]
"""(host, port) → its addresses; raises `OSError` when it has none (`resolve`, or a test's)."""


def resolve(host: str, port: int) -> list[str]:
    """The host's addresses, as the system's resolver answers (blocking)."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


def fetch_commit(
    url: str,
    commit: str,
    dest_tar: Path,
    *,
    work: Path,
    timeout_s: float,
    branch: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    allow_private: bool = False,
    resolver: Resolve = resolve,
) -> None:
    """Write the tree of `commit` at `url` to `dest_tar`; `FetchFailed` saying why not.
    `work` is a directory the caller owns; what is fetched there is removed at the end."""
    if not _COMMIT.fullmatch(commit):
        raise FetchFailed(f"{commit!r} is not a commit id")
    deadline = time.monotonic() + timeout_s
    pin = _pinned(url, allow_private, resolver, deadline)
    repository = work / "fetch.git"
    shutil.rmtree(repository, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    git = _Git(repository, pin, deadline, max_bytes, url)
    try:
        git.run("init", "-q", "--bare", str(repository), here=False)
        wants = [(["--depth=1"], commit), ([], commit)]
        if branch:
            wants.append(([], f"+refs/heads/{branch}:refs/heads/fetched"))
        problems = []
        for options, refspec in wants:
            try:
                git.run("fetch", "-q", "--no-tags", *options, "--", url, refspec)
            except _OutOfBounds:
                raise
            except FetchFailed as exc:
                problems.append(str(exc))
                continue
            if git.has(commit):
                break
            problems.append(f"commit {commit} is not on {branch or 'the remote'}")
        else:
            raise FetchFailed(problems[0])
        git.run("archive", "--format=tar", "-o", str(dest_tar), commit)
    except FetchFailed:
        dest_tar.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(repository, ignore_errors=True)


def _pinned(url: str, allow_private: bool, resolver: Resolve, deadline: float) -> str:
    """The `http.curloptResolve` entry that pins the URL's host to the addresses checked."""
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise FetchFailed("the URL holds spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise FetchFailed("not a URL") from None
    if parts.scheme not in ("http", "https"):
        raise FetchFailed(f"only http and https URLs are fetched, not {parts.scheme or '?'}://")
    host = parts.hostname
    if not host:
        raise FetchFailed("the URL names no host")
    port = port or (443 if parts.scheme == "https" else 80)
    addresses = literal_addresses(host)
    if addresses is None:
        addresses = _resolved(host, port, resolver, deadline)
    if not addresses:
        raise FetchFailed(f"cannot resolve {host}")
    if not allow_private and any(internal_address(a) for a in addresses):
        raise FetchFailed(f"refused: {host} is this machine or a private network")
    listed = ",".join(f"[{a}]" if ":" in a else a for a in addresses)
    return f"{host}:{port}:{listed}"


def _resolved(host: str, port: int, resolver: Resolve, deadline: float) -> tuple[str, ...]:
    """The resolver's answer, waited for in this thread until `deadline`."""
    answer: Future[Sequence[str]] = Future()

    def look_up() -> None:
        try:
            answer.set_result(resolver(host, port))
        except BaseException as exc:  # passed to the waiting thread, which judges it
            answer.set_exception(exc)

    threading.Thread(target=look_up, name="baepo-fetch-resolve", daemon=True).start()
    try:
        return tuple(answer.result(timeout=max(0.0, deadline - time.monotonic())))
    except TimeoutError:
        raise _OutOfBounds(f"cannot resolve {host}: no answer in time") from None
    except (OSError, UnicodeError) as exc:
        raise FetchFailed(f"cannot resolve {host}: {exc}") from None


def redacted(url: str) -> str:
    """The URL as it may be shown: credentials replaced by `***`."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


class _OutOfBounds(FetchFailed):
    """Out of time or space: no other way of asking for the commit is tried."""


class _Git:
    def __init__(self, repository: Path, pin: str, deadline: float, max_bytes: int, url: str):
        self.repository = repository
        self.deadline = deadline
        self.max_bytes = max_bytes
        self.url = url
        items = (*_GIT_CONFIG, f"http.curloptResolve={pin}")
        self.config = [word for item in items for word in ("-c", item)]
        home = repository.parent
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "LC_ALL": "C",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "/bin/false",
            "GIT_ALLOW_PROTOCOL": "http:https",
            "GIT_PROTOCOL_FROM_USER": "0",
        }

    def has(self, commit: str) -> bool:
        try:
            self.run("cat-file", "-e", f"{commit}^{{commit}}")
        except FetchFailed:
            return False
        return True

    def run(self, *args: str, here: bool = True) -> None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise _OutOfBounds("timed out")
        where = ["--git-dir", str(self.repository)] if here else []
        command = ["prlimit", f"--fsize={self.max_bytes}", "--", "git", *self.config, *where]
        try:
            process = subprocess.Popen(
                [*command, *args],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its own group: a timeout kills git-remote-http too
            )
        except OSError as exc:
            raise FetchFailed(f"cannot run git: {exc}") from None
        try:
            _, err = process.communicate(timeout=left)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise _OutOfBounds("timed out") from None
        if process.returncode == _XFSZ:
            raise _OutOfBounds(f"larger than {self.max_bytes} bytes")
        if process.returncode != 0:
            raise FetchFailed(self._reason(err.decode("utf-8", "replace"), args[0]))

    def _reason(self, stderr: str, verb: str) -> str:
        lines = [line.strip() for line in stderr.splitlines() if line.strip()]
        chosen = next(
            (line for line in lines if line.startswith(("fatal:", "error:"))),
            lines[-1] if lines else f"git {verb} failed",
        )
        # git shows the URL it was given; its credentials must not reach a run's log.
        shown = redacted(self.url)
        chosen = chosen.replace(self.url, shown)
        secret = urlsplit(self.url).netloc.rpartition("@")[0]
        if secret:
            chosen = chosen.replace(secret, "***")
        return chosen[:300]
