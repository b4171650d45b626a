"""An upload's body goes to its file through `_Spool`: in order, hashed exactly, with the
event loop free while the disk works, and the file never closed under a write."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time

import pytest

from baepo.registry.uploads import SPOOL_BYTES, _Spool
from baepo.storage import StorageFailure

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class SlowWriter:
    """An UploadWriter whose every write takes `delay` seconds, and that notes misuse."""

    def __init__(self, delay: float = 0.0, fail_after: int | None = None) -> None:
        self.data = bytearray()
        self.delay = delay
        self.fail_after = fail_after
        self.closed = False
        self.written_after_close = False
        self.writes = 0
        self.threads: set[str] = set()

    @property
    def size(self) -> int:
        return len(self.data)

    def write(self, data: bytes) -> None:
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)
        if self.closed:
            self.written_after_close = True
        if self.fail_after is not None and self.writes >= self.fail_after:
            raise StorageFailure("No space left on device")
        self.writes += 1
        self.data += data

    def truncate(self, size: int) -> None:
        del self.data[size:]

    def close(self) -> None:
        self.closed = True


def chunks(total: int, size: int = 64 * 1024) -> list[bytes]:
    blob = os.urandom(total)
    return [blob[i : i + size] for i in range(0, total, size)]


async def test_bytes_arrive_in_order_and_hashed_in_worker_threads() -> None:
    writer, hasher = SlowWriter(), hashlib.sha256()
    parts = chunks(5 * SPOOL_BYTES + 12345)
    spool = _Spool(writer, hasher)
    for part in parts:
        await spool.add(part)
    await spool.drain()
    spool.close()
    whole = b"".join(parts)
    assert bytes(writer.data) == whole
    assert hasher.hexdigest() == hashlib.sha256(whole).hexdigest()
    assert writer.writes == 6  # a write per MiB, not per chunk
    assert threading.main_thread().name not in writer.threads
    assert writer.closed


async def test_the_event_loop_runs_while_the_disk_is_slow() -> None:
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0)

    running = asyncio.ensure_future(ticker())
    spool = _Spool(SlowWriter(delay=0.05), hashlib.sha256())
    for part in chunks(3 * SPOOL_BYTES):
        await spool.add(part)
    ticks_before_drain = ticks
    await spool.drain()
    stop.set()
    await running
    assert ticks_before_drain > 0
    assert ticks > ticks_before_drain  # the loop ran while the last write was under way


async def test_a_write_error_comes_out_of_drain_and_stops_the_writes() -> None:
    writer = SlowWriter(fail_after=1)
    spool = _Spool(writer, hashlib.sha256())
    with pytest.raises(StorageFailure):
        for part in chunks(4 * SPOOL_BYTES):
            await spool.add(part)
        await spool.drain()
    spool.close()
    assert writer.writes == 1
    assert writer.closed


async def test_a_cancelled_request_closes_the_file_only_after_its_write() -> None:
    writer = SlowWriter(delay=0.3)
    spool = _Spool(writer, hashlib.sha256())

    async def request() -> None:
        try:
            for part in chunks(2 * SPOOL_BYTES):
                await spool.add(part)
            await spool.drain()
        finally:
            spool.close()

    task = asyncio.ensure_future(request())
    await asyncio.sleep(0.1)  # the first MiB is being written
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(100):
        if writer.closed:
            break
        await asyncio.sleep(0.05)
    assert writer.closed
    assert not writer.written_after_close
