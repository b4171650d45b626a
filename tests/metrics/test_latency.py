"""Latencies: the histogram's quantiles stay within the stated error, and the request log's
datagrams reach the store from the socket Baepo binds (0600), stopped cleanly."""

from __future__ import annotations

import math
import random
import socket
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from baepo.metrics import RELATIVE_ERROR, AccessLog, LatencyHistogram
from baepo.router import AccessRecord


def exact_quantile(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


@pytest.mark.parametrize("seed", range(5))
def test_quantiles_are_within_the_stated_error(seed: int) -> None:
    rng = random.Random(seed)
    values = [int(rng.lognormvariate(4, 1.5)) + 1 for _ in range(5000)]
    histogram = LatencyHistogram()
    for v in values:
        histogram.add(v)
    for q in (0.5, 0.95, 0.99, 1.0):
        found = histogram.quantile(q)
        exact = exact_quantile(values, q)
        assert found is not None
        assert abs(found - exact) <= exact * RELATIVE_ERROR + 1e-9, (q, found, exact)
    assert len(histogram.counts) < 200  # bounded whatever the number of requests


def test_an_empty_histogram_has_no_quantile_and_zero_is_its_own_bucket() -> None:
    histogram = LatencyHistogram()
    assert histogram.quantile(0.5) is None
    histogram.add(0)
    histogram.add(0)
    histogram.add(100)
    assert histogram.quantile(0.5) == 0
    assert histogram.quantile(1.0) == pytest.approx(100, rel=RELATIVE_ERROR)


@pytest.fixture
def socket_path() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="baepo-al-", dir="/tmp"))
    yield directory / "run" / "access.sock"  # in a directory not made yet
    for child in directory.iterdir():
        child.rmdir()
    directory.rmdir()


def test_the_access_log_reads_datagrams_from_its_private_socket(socket_path: Path) -> None:
    socket_path.parent.mkdir()
    socket_path.write_text("left by a previous run")
    got: list[AccessRecord] = []
    three = threading.Semaphore(0)

    def record(r: AccessRecord) -> None:
        got.append(r)
        three.release()

    access = AccessLog(socket_path, record)
    access.start()
    try:
        assert stat.S_IMODE(socket_path.stat().st_mode) == 0o600
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
            for line in (b"svc_app 200 12 13\n", b"baepo_registry 200 1 1\n", b"garbage"):
                sender.sendto(line, str(socket_path))
            sender.sendto(b"", str(socket_path))  # an empty datagram does not stop it
            sender.sendto(b"svc_app 503 -1 60000\n", str(socket_path))
        assert three.acquire(timeout=5) and three.acquire(timeout=5)
    finally:
        access.stop()
    assert got == [AccessRecord("app", 200, 12, 13), AccessRecord("app", 503, None, 60000)]
    assert not socket_path.exists()


def test_the_access_log_makes_its_directory_when_it_starts_before_the_router(
    socket_path: Path,
) -> None:
    access = AccessLog(socket_path, lambda r: None)
    access.start()
    access.stop()
    assert stat.S_IMODE(socket_path.parent.stat().st_mode) == 0o700
