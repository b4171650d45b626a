"""A run's log: one file per run, secrets masked before a byte is written, bounded in size,
and followed live by whoever watches the run (a `git push` terminal, `baepo pipelines logs -f`,
the console).

    <data>/pipelines/logs/<run id>.log     UTF-8 text, one line per output line, "\\n" ended

`RunLog` is the writer, alive from the run's submission to its end: every line it is given
has each secret value it was told of replaced by `***` (a value is masked line by line: a
secret of several lines is masked wherever one of its lines, of 4 characters or more, shows),
and once `MAX_LOG_BYTES` are written one last line says the log was cut, and what follows is
dropped (the run goes on). Its condition wakes the followers at each line and at the end.

`RunLogFollower` reads the file from where it starts (the beginning, or the end as it is when
the follow begins), then waits for the lines still to come, and ends when the run has ended
and every line was handed out. It holds no thread: `poll` answers what is there, waiting up
to its timeout; iterating it blocks line by line; `close()` from any thread ends both.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, Generic, TypeVar

from baepo.pipelines.errors import PipelinesUnavailable

MAX_LOG_BYTES = 10 * 1024 * 1024
MASK = "***"
MIN_SECRET_CHARS = 4
"""Shorter values are not masked: masking `1` or `true` would blot out every line."""
POLL_BYTES = 1 << 20
"""At most this much of the file is read by one poll."""
STAGE = "-----> "
"""How the lines Baepo writes itself begin (stages, results), as on Heroku."""

View = TypeVar("View")


def secret_lines(values: Iterable[str]) -> list[str]:
    """What to mask for these secret values: each of their lines long enough to be one,
    longest first (so that a value containing another is masked whole)."""
    found = {
        line for value in values for line in value.splitlines() if len(line) >= MIN_SECRET_CHARS
    }
    return sorted(found, key=lambda line: (-len(line), line))


def masked(line: str, secrets: Iterable[str]) -> str:
    """`line` with every occurrence of each secret replaced by `MASK`."""
    for secret in secrets:
        if secret in line:
            line = line.replace(secret, MASK)
    return line


class RunLog:
    """The writer of one run's log file (see the module docstring)."""

    def __init__(self, path: Path, limit: int = MAX_LOG_BYTES) -> None:
        self.path = path
        self._limit = limit
        self._cond = threading.Condition()
        self._file: BinaryIO | None = None
        try:
            self._size = path.stat().st_size
        except FileNotFoundError:
            self._size = 0
        self._secrets: list[str] = []
        self._cut = self._size >= limit
        self._ended = False

    @property
    def size(self) -> int:
        with self._cond:
            return self._size

    @property
    def ended(self) -> bool:
        with self._cond:
            return self._ended

    def mask(self, values: Iterable[str]) -> None:
        """Mask these values in every line written from now on."""
        with self._cond:
            self._secrets = secret_lines([*self._secrets, *values])

    def write(self, text: str) -> None:
        """Append `text`, a line or several (split at line breaks), each masked."""
        with self._cond:
            if self._ended or self._cut:
                return
            data = bytearray()
            for line in text.splitlines() or [""]:
                encoded = (masked(line, self._secrets) + "\n").encode("utf-8", "replace")
                if self._size + len(data) + len(encoded) > self._limit:
                    note = f"… log truncated at {_size(self._limit)}: the rest is dropped"
                    data += (STAGE + note + "\n").encode()
                    self._cut = True
                    break
                data += encoded
            self._append(bytes(data))

    def stage(self, text: str) -> None:
        """A line of Baepo's own: `-----> text`."""
        self.write(STAGE + text)

    def end(self) -> None:
        """No line comes any more: the followers finish once they have read the file."""
        with self._cond:
            self._ended = True
            if self._file is not None:
                with contextlib.suppress(OSError):
                    self._file.close()
                self._file = None
            self._cond.notify_all()

    def wait(self, offset: int, timeout_s: float, closed: Callable[[], bool]) -> None:
        """Until the file is longer than `offset`, the log has ended, `closed()` says so
        (after a `wake`), or `timeout_s` has passed."""
        with self._cond:
            self._cond.wait_for(
                lambda: self._size > offset or self._ended or closed(), timeout=timeout_s
            )

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _append(self, data: bytes) -> None:
        try:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("ab")
            self._file.write(data)
            self._file.flush()
        except OSError as exc:
            raise PipelinesUnavailable(f"cannot write the run's log {self.path}: {exc}") from exc
        self._size += len(data)
        self._cond.notify_all()


class RunLogFollower(Generic[View]):
    """A run's log lines (str, no line break) from `start` on, then live, until its end.

    `log` is the run's writer while the run may still write (None once it has ended);
    `final()` is the run as it is when the follow ends (`run`)."""

    def __init__(
        self, path: Path, log: RunLog | None, start: int, final: Callable[[], View]
    ) -> None:
        self._path = path
        self._log = log
        self._offset = start
        self._final = final
        self._closed = threading.Event()
        self._pending: list[str] = []
        self._done = False

    @property
    def done(self) -> bool:
        """The run has ended and every line of its log was handed out (or `close()`d)."""
        return self._done or self._closed.is_set()

    @property
    def run(self) -> View:
        """The run now (once `done`: as it ended)."""
        return self._final()

    def close(self) -> None:
        self._closed.set()
        if self._log is not None:
            self._log.wake()

    def poll(self, timeout_s: float = 0) -> list[str]:
        """The lines written since the last poll; waits up to `timeout_s` for one."""
        if self.done:
            return []
        lines = self._read()
        if not lines and timeout_s > 0 and self._log is not None and not self.done:
            self._log.wait(self._offset, timeout_s, self._closed.is_set)
            lines = self._read()
        return lines

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        while not self._pending:
            if self.done:
                raise StopIteration
            self._pending = self.poll(timeout_s=3600)
        return self._pending.pop(0)

    def _read(self) -> list[str]:
        # Whether it had ended is read before the file: a line written after that read is
        # then read too, and the follow ends only once nothing can come any more.
        ended = self._log is None or self._log.ended
        try:
            with self._path.open("rb") as f:
                f.seek(self._offset)
                data = f.read(POLL_BYTES)
        except FileNotFoundError:
            data = b""
        except OSError as exc:
            raise PipelinesUnavailable(f"cannot read the run's log {self._path}: {exc}") from exc
        complete = data[: data.rfind(b"\n") + 1]
        self._offset += len(complete)
        if ended and len(data) < POLL_BYTES:
            self._done = True
        return complete.decode("utf-8", "replace").splitlines()


def _size(n: int) -> str:
    return f"{n / 1048576:g} MiB" if n >= 1048576 else f"{n} bytes"
