"""The local CA's signer: the child process `SigningChild` starts (protocol in `signing.py`).

    python -m baepo.router.signer <ca dir>

Reads one request per line on stdin and answers each on stdout with `LocalCA` on `<ca dir>`
(the root is created at first use, as the server's own `LocalCA` did), until stdin closes.
Nothing else is written to stdout: a stray print goes to stderr, which the server quotes when
this process fails. Loaded only here: `cryptography`, and the memory it holds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from baepo.router.certificates import LocalCA
from baepo.router.errors import CertificateError
from baepo.router.signing import SigningRequest

PARENT_CHECK_S = 1.0


class RequestClock:
    """The server's time, as its last request said (`LocalCA` reads the time from a clock)."""

    def __init__(self) -> None:
        self._now = dt.datetime.now(dt.UTC)

    def set(self, now: dt.datetime) -> None:
        self._now = now

    def now(self) -> dt.datetime:
        return self._now

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def answer(ca: LocalCA, clock: RequestClock, line: str) -> str:
    """The answer line to one request line."""
    try:
        request = SigningRequest.parse(line)
        clock.set(request.now)
        if request.hostnames is None:
            return json.dumps({"pem": ca.ca_pem()})
        issued = ca.issue(request.hostnames)
    except CertificateError as exc:
        return json.dumps({"error": str(exc)})
    return json.dumps({"pem": issued.pem, "not_after": issued.not_after.isoformat()})


def serve(ca: LocalCA, clock: RequestClock, requests: Iterable[str], answers: TextIO) -> None:
    for line in requests:
        answers.write(answer(ca, clock, line) + "\n")
        answers.flush()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m baepo.router.signer <ca directory>", file=sys.stderr)
        return 2
    answers, sys.stdout = sys.stdout, sys.stderr
    _end_with_parent()
    clock = RequestClock()
    serve(LocalCA(Path(args[0]), clock), clock, sys.stdin, answers)
    return 0  # stdin closed: the server is done with this child, or gone


def _end_with_parent() -> None:
    """Exit as soon as the parent is gone, even in the middle of a signature. (Its closing
    stdin says so too, but only once this process reads again. PR_SET_PDEATHSIG would fire
    when the server *thread* that started this child ends, and the servers' pools retire
    idle threads.)"""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
