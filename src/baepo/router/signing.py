"""The local CA's signing, in a child process that lives only while there is work.

`cryptography` costs a process about 15 MiB of resident memory from its first import to its
exit. The server signs a handful of certificates at its first start and one per new service,
so it leaves the signing to a child (`signer.py`), which runs `LocalCA` on the same directory:

    python -m baepo.router.signer <ca dir>

`SigningChild` starts it at the first request, sends the next requests to the same child, and
closes it after `idle_s` without work. Requests go one at a time (a lock), one JSON object per
line each way:

    → {"issue": ["app.localhost", "*.app.localhost"], "now": "2026-05-06T07:08:09+00:00"}
    ← {"pem": "<combined PEM, with its notes>", "not_after": "2026-08-04T07:08:09+00:00"}
    → {"ca": true, "now": "2026-05-06T07:08:09+00:00"}
    ← {"pem": "<the root certificate>"}
    ← {"error": "a certificate needs at least one hostname"}     a CertificateError of LocalCA

`now` is the server's clock: the child signs (and creates the root, on first use) as of that
time, as a `LocalCA` given the server's clock would.

Failures, each a `CertificateError` with the end of the child's stderr:

    the child cannot be started           OSError from the spawn
    it exits before answering             a crash, a kill, an import error
    it answers nothing within timeout_s   hung: it is killed
    it answers something unreadable       it is killed

after which the next request starts a new child. A child found dead between requests is
replaced without failing anyone. The child never outlives the server: it ends when its stdin
closes (the server closed it, or exited however it did) and, should it be stuck in a
signature, when its parent is gone (`signer.py` watches).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import select
import signal
import site
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from baepo.clock import Clock
from baepo.router.certificates import IssuedCertificate
from baepo.router.errors import CertificateError

IDLE_S = 30.0
TIMEOUT_S = 30.0  # a request's answer, the child's start included (~0.5 s on an idle machine)
CLOSE_S = 2.0  # for a closed child to exit before it is killed
STDERR_TAIL = 2000  # characters of the child's stderr an error quotes
SRC = Path(__file__).resolve().parents[2]  # where `baepo` is imported from, for the child


@dataclass(frozen=True)
class SigningRequest:
    """One line to the child: a certificate for `hostnames`, or (None) the root certificate."""

    hostnames: tuple[str, ...] | None
    now: dt.datetime

    def line(self) -> str:
        what: dict[str, object] = (
            {"ca": True} if self.hostnames is None else {"issue": list(self.hostnames)}
        )
        return json.dumps({**what, "now": self.now.isoformat()})

    @classmethod
    def parse(cls, line: str) -> SigningRequest:
        try:
            found = json.loads(line)
            now = dt.datetime.fromisoformat(found["now"])
        except (ValueError, TypeError, KeyError) as exc:
            raise CertificateError(f"unreadable signing request {line[:200]!r}: {exc}") from exc
        if now.tzinfo is None:
            raise CertificateError(f"signing request without a time zone: {line[:200]!r}")
        hostnames = found.get("issue")
        if hostnames is None and found.get("ca") is True:
            return cls(None, now)
        if not isinstance(hostnames, list) or not all(isinstance(h, str) for h in hostnames):
            raise CertificateError(f"unreadable signing request {line[:200]!r}")
        return cls(tuple(hostnames), now)


class SigningChild:
    """The local CA whose root lives in `directory`, run in a child process (module doc): a
    `CertificateSource`, and the root certificate users trust, without `cryptography` here.

    `command` replaces the child's command line (tests give a child that misbehaves)."""

    def __init__(
        self,
        directory: Path,
        clock: Clock,
        *,
        idle_s: float = IDLE_S,
        timeout_s: float = TIMEOUT_S,
        command: Sequence[str] | None = None,
    ) -> None:
        self.directory = directory
        self._clock = clock
        self._idle_s = idle_s
        self._timeout_s = timeout_s
        self._command = list(command or (sys.executable, "-P", "-m", "baepo.router.signer"))
        self._lock = threading.Lock()
        self._child: _Child | None = None
        self._requests = 0  # so that an idle timer armed before a request closes nothing
        self._timer: threading.Timer | None = None

    @property
    def pid(self) -> int | None:
        """The running child's process id, if one runs."""
        child = self._child
        return child.process.pid if child is not None else None

    def issue(self, hostnames: Sequence[str]) -> IssuedCertificate:
        names = tuple(hostnames)
        found = self._ask(SigningRequest(names, self._clock.now()), f"signing for {names}")
        pem, not_after = found.get("pem"), found.get("not_after")
        if not isinstance(pem, str) or not isinstance(not_after, str):
            raise CertificateError(f"the local CA's signer answered no certificate: {found}")
        try:
            expiry = dt.datetime.fromisoformat(not_after)
        except ValueError as exc:
            raise CertificateError(f"the local CA's signer answered {not_after!r}") from exc
        return IssuedCertificate(names, pem, expiry)

    def ca_pem(self) -> str:
        """The root certificate, for a user to trust: read from its file once the root exists
        (no child needed), else made by the child."""
        with self._lock:  # a child creating the root writes the files under this lock
            if (self.directory / "ca.key").exists():
                try:
                    pem = (self.directory / "ca.pem").read_text()
                except FileNotFoundError:
                    pem = ""  # half a root: the child says what LocalCA makes of it
                except OSError as exc:
                    raise CertificateError(f"cannot read the local CA: {exc}") from exc
                if "-----BEGIN CERTIFICATE-----" in pem:
                    return pem
        found = self._ask(SigningRequest(None, self._clock.now()), "reading the root")
        root = found.get("pem")
        if not isinstance(root, str):
            raise CertificateError(f"the local CA's signer answered no certificate: {found}")
        return root

    def close(self) -> None:
        """End the child, if one runs (the next request starts another)."""
        with self._lock:
            self._cancel_timer()
            if self._child is not None:
                self._child.close()
                self._child = None

    def _ask(self, request: SigningRequest, what: str) -> dict[str, object]:
        with self._lock:
            self._cancel_timer()
            self._requests += 1
            try:
                reused = self._child is not None
                child = self._running()
                try:
                    try:
                        line = child.ask(request.line(), self._timeout_s)
                    except _ChildFailed:
                        if not reused:
                            raise
                        # It may have died between requests without `poll` seeing it yet (a
                        # kill just now): one more try, with a new child.
                        self._child = None
                        child.close()
                        child = self._running()
                        line = child.ask(request.line(), self._timeout_s)
                except _ChildFailed as exc:
                    self._child = None
                    raise CertificateError(
                        f"the local CA's signer (pid {child.process.pid}) {exc} while {what}; "
                        f"its stderr: {child.stderr_tail() or '(empty)'}"
                    ) from exc
                try:
                    found = json.loads(line)
                    if not isinstance(found, dict):
                        raise ValueError("not an object")
                except ValueError:
                    self._child = None
                    child.kill()
                    raise CertificateError(
                        f"the local CA's signer (pid {child.process.pid}) answered "
                        f"{line[:200]!r} while {what}; its stderr: "
                        f"{child.stderr_tail() or '(empty)'}"
                    ) from None
            finally:
                self._arm_timer()
        if "error" in found:
            raise CertificateError(str(found["error"]))
        return found

    def _running(self) -> _Child:
        if self._child is not None and self._child.process.poll() is not None:
            self._child.close()  # died between requests (killed, out of memory): replaced
            self._child = None
        if self._child is None:
            self._child = _Child.start([*self._command, str(self.directory)])
        return self._child

    def _arm_timer(self) -> None:
        if self._child is None:
            return
        self._timer = threading.Timer(self._idle_s, self._close_if_idle, (self._requests,))
        self._timer.daemon = True
        self._timer.name = "baepo-signer-idle"
        self._timer.start()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _close_if_idle(self, requests: int) -> None:
        with self._lock:
            if self._requests != requests or self._child is None:
                return  # a request came since: its own timer decides
            self._timer = None
            self._child.close()
            self._child = None


class _ChildFailed(Exception):
    """The child did not answer (the message says how); it is gone."""


class _Child:
    """One signer process and its pipes, read with deadlines."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self._out = b""
        self._err = b""

    @classmethod
    def start(cls, command: list[str]) -> _Child:
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=_child_environment(),
                # Not in the terminal's process group: a Ctrl-C is the server's to handle
                # (the child ends when the server does).
                start_new_session=True,
            )
        except OSError as exc:
            raise CertificateError(f"cannot start the local CA's signer: {exc}") from exc
        return cls(process)

    def ask(self, line: str, timeout_s: float) -> str:
        """Its answer to `line`, within `timeout_s` (else it is killed)."""
        deadline = time.monotonic() + timeout_s
        stdin = self.process.stdin
        assert stdin is not None
        try:
            stdin.write(line.encode() + b"\n")
            stdin.flush()
        except OSError as exc:  # BrokenPipeError: it died
            self.kill()
            raise _ChildFailed(self._ended()) from exc
        answer = self._read_line(deadline)
        if answer is None:
            self.kill()
            raise _ChildFailed(f"did not answer within {timeout_s:g} s and was killed")
        return answer

    def _read_line(self, deadline: float) -> str | None:
        """The next line on its stdout, or None if none came by `deadline`."""
        assert self.process.stdout is not None and self.process.stderr is not None
        out, err = self.process.stdout.fileno(), self.process.stderr.fileno()
        poller = select.poll()  # not select(): the server's descriptors go past 1024
        poller.register(out, select.POLLIN)
        poller.register(err, select.POLLIN)
        while b"\n" not in self._out:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            for fd, _ in poller.poll(left * 1000):
                data = os.read(fd, 65536)
                if fd == err:
                    self._keep_stderr(data)
                    if not data:
                        poller.unregister(err)
                elif data:
                    self._out += data
                else:  # its stdout closed: it exits
                    self.kill(grace_s=CLOSE_S)
                    raise _ChildFailed(self._ended())
        line, _, self._out = self._out.partition(b"\n")
        return line.decode(errors="replace")

    def stderr_tail(self) -> str:
        """The end of what the child wrote on stderr (all of it, once the child is gone)."""
        return self._err.decode(errors="replace").strip()[-STDERR_TAIL:]

    def _keep_stderr(self, data: bytes) -> None:
        self._err = (self._err + data)[-4 * STDERR_TAIL :]

    def close(self) -> None:
        """Close its stdin, which ends it; killed if it does not end within CLOSE_S."""
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):  # it died with a request unread
                self.process.stdin.close()
        self.kill(grace_s=CLOSE_S)

    def kill(self, grace_s: float = 0.0) -> None:
        """Kill it (however it is) unless it exits within `grace_s`, wait for it, and keep
        what it said on stderr."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(grace_s)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        self._drain()

    def _drain(self) -> None:
        """Read the rest of its stderr (it is gone: its end of the pipe is closed, unless a
        process of its own holds it, hence the bound), then close the pipes."""
        stderr, stdout = self.process.stderr, self.process.stdout
        if stderr is not None and not stderr.closed:
            poller = select.poll()
            poller.register(stderr.fileno(), select.POLLIN)
            deadline = time.monotonic() + 1.0
            while (left := deadline - time.monotonic()) > 0 and poller.poll(left * 1000):
                data = os.read(stderr.fileno(), 65536)
                if not data:
                    break
                self._keep_stderr(data)
            stderr.close()
        if stdout is not None:
            stdout.close()

    def _ended(self) -> str:
        code = self.process.returncode
        if code is not None and code < 0:
            return f"was killed by {signal.Signals(-code).name}"
        return f"exited with status {code}"


def _child_environment() -> dict[str, str]:
    """The server's environment, and where to import this very `baepo` from: the child's
    interpreter finds the site directories itself; a source tree the server was given
    (PYTHONPATH, an editable install) goes first on its PYTHONPATH."""
    if str(SRC) in {*site.getsitepackages(), site.getusersitepackages()}:
        return dict(os.environ)
    path = [str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
