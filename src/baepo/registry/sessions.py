"""The upload sessions this process holds in memory, and which of them a request is using.

A session's durable state is its row and its upload file (see uploads.py); what lives here is
the fast path: bytes received and the running hash of recently used sessions (at most
`MAX_CACHED`, least recently used evicted first), and the set of sessions a request is
streaming into right now. The upload flow fills it; deleting a repository and the garbage
collector forget sessions in it, from their own threads, hence the lock.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from baepo.registry.errors import UploadRangeInvalid

MAX_CACHED = 1024


@dataclass
class Upload:
    id: str
    repository: str
    size: int
    hasher: Any  # sha256 of bytes [0, size); None until rebuilt from the file


class LiveSessions:
    def __init__(self) -> None:
        self._live: OrderedDict[str, Upload] = OrderedDict()
        self._busy: set[str] = set()
        self._lock = threading.Lock()

    def get(self, upload_id: str) -> Upload | None:
        """The session if it is in memory (it becomes the most recently used)."""
        with self._lock:
            upload = self._live.get(upload_id)
            if upload is not None:
                self._live.move_to_end(upload_id)
        return upload

    def remember(self, upload: Upload) -> None:
        with self._lock:
            self._live[upload.id] = upload
            while len(self._live) > MAX_CACHED:
                oldest = next(iter(self._live))
                if oldest in self._busy:
                    break
                del self._live[oldest]

    def forget(self, upload_id: str) -> None:
        with self._lock:
            self._live.pop(upload_id, None)

    def is_busy(self, upload_id: str) -> bool:
        """A request is streaming into this upload right now (the gc leaves it alone)."""
        return upload_id in self._busy

    @contextmanager
    def claim(self, upload_id: str) -> Iterator[None]:
        """Hold the session for one request; a second one at the same time gets
        BLOB_UPLOAD_INVALID (416). Claims are taken on the event loop only: no lock."""
        if upload_id in self._busy:
            raise UploadRangeInvalid("upload is busy with another request", {"uuid": upload_id})
        self._busy.add(upload_id)
        try:
            yield
        finally:
            self._busy.discard(upload_id)
