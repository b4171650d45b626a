"""The in-memory driver: the same contract as the filesystem driver, for other rooms' tests.

Thread-safe (one lock). Modification times come from an injected clock, so a test of the
garbage collector's grace period can jump in time instead of sleeping.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from baepo.clock import Clock
from baepo.storage.driver import (
    BlobInfo,
    BlobReader,
    UploadInfo,
    UploadWriter,
    check_digest,
    check_upload_id,
)
from baepo.storage.errors import BlobNotFound, UploadNotFound


@dataclass
class _Entry:
    data: bytearray
    modified: datetime


class _MemoryReader:
    def __init__(self, data: bytes, offset: int) -> None:
        self._data = memoryview(data)
        self._pos = offset

    def read(self, size: int) -> bytes:
        chunk = bytes(self._data[self._pos : self._pos + size])
        self._pos += len(chunk)
        return chunk

    def close(self) -> None:
        self._data.release()


class _MemoryWriter:
    def __init__(self, driver: MemoryDriver, upload_id: str) -> None:
        self._driver = driver
        self._id = upload_id

    @property
    def size(self) -> int:
        return len(self._driver._entry(self._id).data)

    def write(self, data: bytes) -> None:
        with self._driver._lock:
            entry = self._driver._entry(self._id)
            entry.data += data
            entry.modified = self._driver._now()

    def truncate(self, size: int) -> None:
        with self._driver._lock:
            entry = self._driver._entry(self._id)
            del entry.data[size:]
            entry.modified = self._driver._now()

    def close(self) -> None:
        pass


class MemoryDriver:
    remote = False

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self._blobs: dict[str, tuple[bytes, datetime]] = {}
        self._uploads: dict[str, _Entry] = {}

    def _now(self) -> datetime:
        return self._clock.now() if self._clock else datetime.now(UTC)

    def _entry(self, upload_id: str) -> _Entry:
        try:
            return self._uploads[check_upload_id(upload_id)]
        except KeyError as exc:
            raise UploadNotFound(upload_id) from exc

    # -- blobs -----------------------------------------------------------------------------
    def stat(self, digest: str) -> BlobInfo | None:
        check_digest(digest)
        with self._lock:
            found = self._blobs.get(digest)
        return BlobInfo(digest, len(found[0]), found[1]) if found else None

    def get(self, digest: str) -> bytes:
        check_digest(digest)
        with self._lock:
            found = self._blobs.get(digest)
        if found is None:
            raise BlobNotFound(digest)
        return found[0]

    def open(self, digest: str, offset: int = 0) -> BlobReader:
        return _MemoryReader(self.get(digest), offset)

    def put(self, digest: str, data: bytes) -> BlobInfo:
        check_digest(digest)
        now = self._now()
        with self._lock:
            self._blobs[digest] = (bytes(data), now)
        return BlobInfo(digest, len(data), now)

    def delete(self, digest: str) -> bool:
        check_digest(digest)
        with self._lock:
            return self._blobs.pop(digest, None) is not None

    def blobs(self) -> Iterator[BlobInfo]:
        with self._lock:
            items = list(self._blobs.items())
        for digest, (data, modified) in items:
            yield BlobInfo(digest, len(data), modified)

    def redirect_url(self, digest: str) -> str | None:
        return None

    # -- uploads ---------------------------------------------------------------------------
    def create_upload(self, upload_id: str) -> None:
        check_upload_id(upload_id)
        with self._lock:
            self._uploads[upload_id] = _Entry(bytearray(), self._now())

    def append(self, upload_id: str) -> UploadWriter:
        with self._lock:
            self._entry(upload_id)
        return _MemoryWriter(self, upload_id)

    def upload_size(self, upload_id: str) -> int:
        with self._lock:
            return len(self._entry(upload_id).data)

    def read_upload(self, upload_id: str, offset: int = 0) -> BlobReader:
        with self._lock:
            data = bytes(self._entry(upload_id).data)
        return _MemoryReader(data, offset)

    def commit_upload(self, upload_id: str, digest: str) -> BlobInfo:
        check_digest(digest)
        now = self._now()
        with self._lock:
            entry = self._entry(upload_id)
            del self._uploads[upload_id]
            data = self._blobs[digest][0] if digest in self._blobs else bytes(entry.data)
            self._blobs[digest] = (data, now)
        return BlobInfo(digest, len(data), now)

    def delete_upload(self, upload_id: str) -> bool:
        check_upload_id(upload_id)
        with self._lock:
            return self._uploads.pop(upload_id, None) is not None

    def uploads(self) -> Iterator[UploadInfo]:
        with self._lock:
            items = [(k, len(v.data), v.modified) for k, v in self._uploads.items()]
        for upload_id, size, modified in items:
            yield UploadInfo(upload_id, size, modified)

    def sweep_temp(self, older_than: datetime, *, dry_run: bool = False) -> tuple[int, int]:
        return 0, 0  # nothing is ever half-written in memory
