"""Request latencies: HAProxy's per-request datagrams (router/access_log.py) read in a thread,
into a small histogram per service and minute.

`LatencyHistogram` is log-linear: bucket i > 0 holds values in [2^((i-1)/8), 2^(i/8)) ms, and a
quantile is reported as its bucket's geometric middle, so a reported p50/p95/p99 is within
4.4 % of the true value (2^(1/16) - 1) of the requests counted; 0 ms has a bucket of its own. It
is sparse (a dict of the buckets in use): a service whose requests take 5 to 500 ms uses at
most 54 buckets, whatever the number of requests.

`AccessLog` binds the datagram socket (mode 0600: only Baepo's user, HAProxy's too, may send)
and hands each service's record to `record` from its own thread. The socket is lossy by design
(see router/access_log.py): what arrives is a sample of the requests when they come faster
than this thread reads them.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

from baepo.router import AccessRecord, parse_access_record

log = logging.getLogger(__name__)

STEPS_PER_DOUBLING = 8
RELATIVE_ERROR = 2 ** (1 / (2 * STEPS_PER_DOUBLING)) - 1  # 4.4 %
DATAGRAM_BYTES = 1024  # the `len` of HAProxy's log line


def bucket_of(ms: float) -> int:
    if ms <= 0:
        return 0
    return 1 + math.floor(STEPS_PER_DOUBLING * math.log2(ms))


def middle_of(bucket: int) -> float:
    """The value a bucket stands for: its bounds' geometric mean."""
    if bucket <= 0:
        return 0.0
    return float(2 ** ((bucket - 0.5) / STEPS_PER_DOUBLING))


class LatencyHistogram:
    """Counts of request times (ms) by log-linear bucket. Not thread-safe: its owner locks."""

    __slots__ = ("count", "counts")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.count = 0

    def add(self, ms: float) -> None:
        bucket = bucket_of(ms)
        self.counts[bucket] = self.counts.get(bucket, 0) + 1
        self.count += 1

    def quantile(self, q: float) -> float | None:
        """The q-quantile (0 < q ≤ 1) in ms, within RELATIVE_ERROR; None without values."""
        if self.count == 0:
            return None
        rank = max(1, math.ceil(q * self.count))
        seen = 0
        for bucket in sorted(self.counts):
            seen += self.counts[bucket]
            if seen >= rank:
                return round(middle_of(bucket), 3)
        raise AssertionError("unreachable: the counts add up to count")


Record = Callable[[AccessRecord], None]


class AccessLog:
    """HAProxy's request datagrams, read from `path` in a thread until `stop()`."""

    def __init__(self, path: Path, record: Record) -> None:
        self._path = path
        self._record = record
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self) -> None:
        """Bind the socket (replacing one a previous Baepo left) and start reading."""
        if self._thread is not None:
            return
        self._path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # the router's too
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(str(self._path))  # 0700 under Baepo's umask (077), then 0600
            os.chmod(self._path, 0o600)
        except OSError:
            sock.close()
            raise
        self._socket = sock
        self._stopping.clear()
        self._thread = threading.Thread(target=self._read, name="baepo-access-log", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 1.0) -> None:
        sock, self._socket = self._socket, None
        thread, self._thread = self._thread, None
        if sock is None:
            return
        self._stopping.set()
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)  # the reading thread's recv returns b""
        if thread is not None:
            thread.join(timeout_s)
        sock.close()
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()

    def _read(self) -> None:
        sock = self._socket
        assert sock is not None
        while True:
            try:
                datagram = sock.recv(DATAGRAM_BYTES)
            except OSError:
                return
            if not datagram:
                if self._stopping.is_set():
                    return
                continue
            record = parse_access_record(datagram)
            if record is None:
                continue
            try:
                self._record(record)
            except Exception:  # one bad record must not end the latencies
                log.exception("could not record a request's latency")
