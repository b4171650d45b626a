"""The upload sessions this process holds in memory, and which of them a request is using.

A session's durable state is its row and its upload file (see uploads.py); what lives here is
the fast path: bytes received and the running hash of recently used sessions (at most
`MAX_CACHED`, least recently used evicted first), and the set of sessions a request is
streaming into right now. The upload flow fills it; deleting a repository and the garbage
collector forget sessions in it, from their own threads, hence the lock.

Several processes may share the database and the bucket, and a load balancer may send each
request of one upload to another process: what one process remembers of a session may be
behind what another has appended since. Two things keep that safe. A request that appends,
commits or cancels holds the session's row first (`Hold`: a holder and an expiry in the row,
taken in one conditional UPDATE), so two processes never write one upload at once (the second
gets BLOB_UPLOAD_INVALID, 416, as within one process); and, holding it, it compares what it
remembers with the size the storage has, and rebuilds the hash from the bytes when they differ
(uploads.py). A process killed mid-request leaves its hold to lapse after `HOLD_S`, or to be
let go when it starts again (`release_holds`: a hold names its process's advertised address).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import anyio.to_thread
import sqlalchemy as sa
from sqlalchemy.orm import Session

from baepo.registry import tables as t
from baepo.registry.errors import BlobUploadUnknown, RegistryUnavailable, UploadRangeInvalid
from baepo.registry.records import Records
from baepo.store import affected

MAX_CACHED = 1024
HOLD_S = 60.0
"""How long a hold lasts unless renewed: what a process killed mid-request blocks."""
RENEW_S = HOLD_S / 4


@dataclass
class Upload:
    id: str
    repository: str
    size: int
    hasher: Any  # sha256 of bytes [0, size); None until rebuilt from the file
    shared: bool = True  # it has a row (a single-request upload has none: no one else sees it)


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
            raise _busy(upload_id)
        self._busy.add(upload_id)
        try:
            yield
        finally:
            self._busy.discard(upload_id)


def _busy(upload_id: str) -> UploadRangeInvalid:
    return UploadRangeInvalid("upload is busy with another request", {"uuid": upload_id})


class Hold:
    """One request's hold on an upload's row, among the processes sharing the database.

    `take` sets the row's holder and expiry if no other request holds it (or its hold has
    lapsed), in one UPDATE whose WHERE says so; a renewal task pushes the expiry on while the
    request lasts; `release` clears it (only if still this request's). An upload with no row
    (`Upload.shared` false) needs no hold, nor does any in a process alone on its database
    (`process` None: SQLite), where the in-memory claim (`LiveSessions.claim`) is enough."""

    def __init__(self, records: Records, upload: Upload, process: str | None) -> None:
        self._records = records
        self._upload = upload
        self._holder = f"{process}/{uuid.uuid4().hex}"
        self._renewing: asyncio.Task[None] | None = None
        self.shared = process is not None and upload.shared
        """Whether another process may write the upload (else no hold is needed)."""
        self._released = not self.shared

    async def take(self) -> None:
        """Hold the row (BLOB_UPLOAD_INVALID if another request does, BLOB_UPLOAD_UNKNOWN if
        there is none), and keep holding it until `release`."""
        if not self.shared:
            return
        taken = await anyio.to_thread.run_sync(self._records.write, self._take)
        if taken is None:
            raise BlobUploadUnknown("blob upload unknown to registry", {"uuid": self._upload.id})
        if not taken:
            raise _busy(self._upload.id)
        self._renewing = asyncio.create_task(self._renew(), name=f"hold-{self._upload.id}")

    def _take(self, s: Session) -> bool | None:
        now = self._records.clock.now()
        row = t.UploadRecord
        free = row.held_until.is_(None) | (row.held_until <= now)
        taken = s.execute(
            sa.update(row)
            .where(row.id == self._upload.id, free)
            .values(held_by=self._holder, held_until=now + timedelta(seconds=HOLD_S)),
            execution_options={"synchronize_session": False},
        )
        if affected(taken):
            return True
        return False if s.get(row, self._upload.id) is not None else None

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(RENEW_S)
            with contextlib.suppress(RegistryUnavailable):  # tried again; else it lapses
                await anyio.to_thread.run_sync(self._records.write, self._extend)

    def _extend(self, s: Session) -> None:
        until = self._records.clock.now() + timedelta(seconds=HOLD_S)
        self._mine(s, held_until=until)

    def stop_renewing(self) -> None:
        if self._renewing is not None:
            self._renewing.cancel()
            self._renewing = None

    async def release(self) -> None:
        self.stop_renewing()
        await anyio.to_thread.run_sync(self.release_now)

    def release_later(self) -> None:
        """Release in a worker thread, not waited for (from a request that failed or was
        cancelled: it may not wait any more)."""
        self.stop_renewing()
        if not self._released:
            asyncio.get_running_loop().run_in_executor(None, self.release_now)

    def release_now(self) -> None:
        """Let the row go (from a worker thread): the next request, anywhere, may take it.
        Best effort: a release that fails leaves a hold that lapses."""
        if self._released:
            return
        self._released = True
        now = self._records.clock.now()
        with contextlib.suppress(RegistryUnavailable):
            self._records.write(
                lambda s: self._mine(s, held_by=None, held_until=None, updated_at=now)
            )

    def _mine(self, s: Session, **values: Any) -> None:
        row = t.UploadRecord
        s.execute(
            sa.update(row)
            .where(row.id == self._upload.id, row.held_by == self._holder)
            .values(**values),
            execution_options={"synchronize_session": False},
        )


def release_holds(records: Records, process: str) -> None:
    """Let go of the holds an earlier run of this process left (it was killed mid-request):
    the client may resume at once, not after `HOLD_S`."""
    row = t.UploadRecord
    records.write(
        lambda s: s.execute(
            sa.update(row)
            .where(row.held_by.startswith(f"{process}/", autoescape=True))
            .values(held_by=None, held_until=None),
            execution_options={"synchronize_session": False},
        )
    )
