"""The pre-receive hook: git runs it before it updates a service's branches; it runs their
pipelines and accepts the push only if they succeed.

git gives the hook one line per updated ref on its standard input, `<old> <new> <ref>`, and
shows whatever it prints to the pusher as `remote: …` lines; a non-zero exit rejects the whole
push (`! [remote rejected] main -> main (pre-receive hook declined)`), so no ref moves. For
each branch that gets a commit (deletions and tags pass untouched) the hook

1. writes the commit's tree as a tar (`git archive --format=tar <new>`; the pushed objects
   are still in git's quarantine, which the environment git gives the hook points to),
2. posts it to Baepo's push endpoint, which the gateway named for this push:

       POST $BAEPO_PUSH_URL?branch=<branch>&commit=<new>
       Authorization: Bearer $BAEPO_PUSH_SECRET      (valid while this push lasts)
       Content-Type: application/x-tar

3. prints the answer's lines as they come (the pipeline's log, live), until the last one,
   which is not printed as it is: `RESULT_MARK` followed by JSON,
   `{"ok": bool, "status": "SUCCEEDED", "run": "<id>"|null, "number": 3|null, "message": "…"}`;
   the hook prints `-----> run #3 SUCCEEDED` (or the failure and why) instead.

The first branch that fails ends the hook with exit status 1. An answer other than 200, or
one that ends without its result line, fails too: a push is never accepted by accident.

This program needs only the standard library (git_remote.py runs it by path with `python -I`,
so it starts fast and needs no PYTHONPATH); `pushes.py` writes the answers it reads.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import urlencode, urlsplit

RESULT_MARK = "\x1e"
"""Starts the answer's last line (ASCII record separator: no log line starts with it)."""
URL_VARIABLE = "BAEPO_PUSH_URL"
SECRET_VARIABLE = "BAEPO_PUSH_SECRET"
STAGE = "-----> "
CONNECT_TIMEOUT_S = 10.0
ERROR_BODY_MAX = 4096


@dataclass(frozen=True)
class Result:
    """The end of a push endpoint's answer."""

    ok: bool
    status: str
    message: str = ""
    run: str | None = None
    number: int | None = None

    def line(self) -> str:
        """The answer's last line, as the endpoint sends it."""
        fields = {
            "ok": self.ok,
            "status": self.status,
            "run": self.run,
            "number": self.number,
            "message": self.message,
        }
        return RESULT_MARK + json.dumps(fields)

    def summary(self) -> str:
        """What the pusher reads."""
        if self.number is None:
            return self.message or self.status
        said = f"run #{self.number} {self.status}"
        return f"{said}: {self.message}" if self.message else said

    @staticmethod
    def parse(line: str) -> Result | None:
        """The result a line carries, or None (not a result line, or a malformed one)."""
        if not line.startswith(RESULT_MARK):
            return None
        try:
            fields = json.loads(line[len(RESULT_MARK) :])
            number = fields.get("number")
            return Result(
                ok=fields["ok"] is True,
                status=str(fields["status"]),
                message=str(fields.get("message") or ""),
                run=None if fields.get("run") is None else str(fields["run"]),
                number=None if number is None else int(number),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


@dataclass(frozen=True)
class Update:
    old: str
    new: str
    ref: str

    @property
    def branch(self) -> str | None:
        """The branch this update gives a commit to; None for a deletion, a tag, a note."""
        if not self.ref.startswith("refs/heads/") or set(self.new) == {"0"}:
            return None
        return self.ref.removeprefix("refs/heads/")


def updates(lines: Iterable[str]) -> list[Update]:
    found = []
    for line in lines:
        parts = line.split()
        if len(parts) == 3:
            found.append(Update(*parts))
    return found


class Refused(Exception):
    """The push endpoint could not be reached or did not take the branch (the message says)."""


def main(stdin: Iterable[str], out: BinaryIO, env: Mapping[str, str], *, git: str = "git") -> int:
    url, secret = env.get(URL_VARIABLE), env.get(SECRET_VARIABLE)
    if not url or not secret:
        say(out, "baepo: this repository takes pushes through Baepo's git remote only")
        return 1
    for update in updates(stdin):
        branch = update.branch
        if branch is None:
            continue
        try:
            result = run_branch(url, secret, branch, update.new, out, git=git)
        except Refused as exc:
            say(out, f"baepo: {exc}")
            return 1
        say(out, STAGE + result.summary())
        if not result.ok:
            return 1
    return 0


def run_branch(
    url: str, secret: str, branch: str, commit: str, out: BinaryIO, *, git: str
) -> Result:
    with tempfile.TemporaryFile() as tar:
        archive(commit, tar, git=git)
        return post(url, secret, branch, commit, tar, out)


def archive(commit: str, into: BinaryIO, *, git: str) -> None:
    try:
        done = subprocess.run(
            [git, "archive", "--format=tar", commit], stdout=into, stderr=subprocess.PIPE
        )
    except OSError as exc:
        raise Refused(f"cannot run git archive: {exc}") from exc
    if done.returncode != 0:
        raise Refused(f"git archive {commit} failed: {done.stderr.decode(errors='replace')}")
    into.seek(0)


def post(url: str, secret: str, branch: str, commit: str, tar: BinaryIO, out: BinaryIO) -> Result:
    """Send the tar, print the answer's log lines as they come, return its result."""
    parts = urlsplit(url)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.netloc, timeout=CONNECT_TIMEOUT_S)
    size = os.fstat(tar.fileno()).st_size
    try:
        connection.connect()
        assert connection.sock is not None
        connection.sock.settimeout(None)  # a pipeline may be silent for minutes
        query = urlencode({"branch": branch, "commit": commit})
        connection.request(
            "POST",
            f"{parts.path}?{query}",
            body=tar,
            headers={
                "Authorization": f"Bearer {secret}",
                "Content-Type": "application/x-tar",
                "Content-Length": str(size),
            },
        )
        answer = connection.getresponse()
        if answer.status != 200:
            text = answer.read(ERROR_BODY_MAX).decode(errors="replace").strip()
            raise Refused(f"the pipeline did not take {branch} ({answer.status}): {text}")
        return relay(answer, out)
    except (OSError, http.client.HTTPException) as exc:
        raise Refused(f"cannot reach Baepo's pipelines at {parts.netloc}: {exc}") from exc
    finally:
        connection.close()


def relay(answer: Iterable[bytes], out: BinaryIO) -> Result:
    for raw in answer:
        line = raw.decode(errors="replace").rstrip("\r\n")
        result = Result.parse(line)
        if result is not None:
            return result
        say(out, line)
    raise Refused("the pipeline's answer ended before its result")


def say(out: BinaryIO, line: str) -> None:
    out.write(line.encode() + b"\n")
    out.flush()


if __name__ == "__main__":
    sys.exit(main(sys.stdin, sys.stdout.buffer, os.environ))
