"""`Uploads`: blob upload sessions — start, append, hash as the bytes arrive, verify, commit.

A session is a row in `registry_uploads` (id, repository, started) plus an append-only upload
file in the StorageDriver. Its live state — bytes received and the running sha256 — is kept
in memory (sessions.py); after a restart (or when evicted) the state is rebuilt from the
file: the size is the file's length and the hash is recomputed by reading it back once.

A request body is gathered into 1 MiB buffers, each written and hashed in a worker thread while
the next arrives (`_Spool`): the event loop never waits on the disk, an upload holds about
2 MiB whatever its size, and sha256 runs on another core. The commit — an fsync and a rename —
and the database calls go to a worker thread too.

A blob exists only after its digest is verified: the driver's commit is an atomic rename of
the complete, fsynced upload file, so a process killed mid-upload never leaves a blob that
could be served. Two sessions committing the same digest both succeed.

On S3 (`baepo.storage.s3`) the upload file is a multipart upload whose parts the driver
sends from the same worker threads, the last one when the request ends (`_Spool.finish`), and
the commit is a server-side copy; opening and closing a writer wait on the network, so they
run in worker threads too.

One request at a time per session, among all the processes that share the database: a
second concurrent request on a busy session gets BLOB_UPLOAD_INVALID (416), which clients
answer by asking for the upload's status. A request holds the session's row (sessions.py's
`Hold`) and, holding it, checks what this process remembers against the size the storage has:
another process may have appended since (a load balancer sends each request anywhere). Then
the hash is rebuilt from the bytes, so a digest is always checked against what is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio.to_thread
import sqlalchemy as sa

from baepo.registry import tables as t
from baepo.registry.blobs import BlobStore
from baepo.registry.context import RegistryContext
from baepo.registry.errors import (
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    RegistryUnavailable,
    UploadRangeInvalid,
)
from baepo.registry.ranges import ByteRange
from baepo.registry.records import storage_call
from baepo.registry.references import Digest
from baepo.registry.sessions import Hold, Upload
from baepo.storage import BlobInfo, StorageError, UploadNotFound, UploadWriter

READ_CHUNK = 1024 * 1024
SPOOL_BYTES = 1024 * 1024


class _Spool:
    """A request body on its way to an upload file: gathered into buffers of SPOOL_BYTES,
    each written and hashed in a worker thread while the next one arrives. At most one buffer
    is being written and one filled, so an upload holds about 2 MiB whatever its size, and
    the event loop never waits on the disk or on sha256 (which runs on another core: hashlib
    lets go of the GIL for large buffers)."""

    def __init__(self, writer: UploadWriter, hasher: Any) -> None:
        self._writer = writer
        self._hasher = hasher
        self._buffer = bytearray()
        self._flushing: asyncio.Future[None] | None = None
        self._closed = False

    async def add(self, chunk: bytes) -> None:
        self._buffer += chunk
        if len(self._buffer) >= SPOOL_BYTES:
            await self._flush()

    async def drain(self) -> None:
        """Write what is gathered and wait for every write; a write's error is raised here."""
        try:
            if self._buffer:
                await self._flush()
        finally:
            await self._settle()

    async def finish(self) -> None:
        """Close the writer in a worker thread: a remote driver sends its last bytes there,
        and a failure to keep them is raised here, before the client is told they arrived."""
        self._closed = True
        await anyio.to_thread.run_sync(self._writer.close)

    def close(self, then: Callable[[], None] | None = None) -> None:
        """Close the writer if `finish` did not, after the write in flight if one is (a
        request cancelled while it waited for a write leaves that write running: the writer
        is closed when it ends), in a worker thread: a remote driver's close sends bytes.
        `then` runs in that thread after it (the upload's hold is let go only then)."""
        loop = asyncio.get_running_loop()
        if self._closed:
            if then is not None:
                loop.run_in_executor(None, then)
            return
        self._closed = True

        def close_and_then() -> None:
            try:
                self._writer.close()
            finally:
                if then is not None:
                    then()

        def close_later(_: object = None) -> None:
            # A failure here is the next request's to find (its writer's size differs).
            closing = loop.run_in_executor(None, close_and_then)
            closing.add_done_callback(lambda done: done.cancelled() or done.exception())

        if self._flushing is not None and not self._flushing.done():
            self._flushing.add_done_callback(close_later)
        else:
            close_later()

    async def _flush(self) -> None:
        await self._settle()
        data, self._buffer = bytes(self._buffer), bytearray()  # one copy per MiB, not per chunk
        self._flushing = asyncio.ensure_future(anyio.to_thread.run_sync(self._write, data))

    async def _settle(self) -> None:
        """Wait for the write in flight; it stays known until it has ended (see `close`)."""
        if self._flushing is not None:
            await asyncio.shield(self._flushing)
            self._flushing = None

    def _write(self, data: bytes) -> None:
        self._writer.write(data)
        self._hasher.update(data)


class Uploads:
    def __init__(self, ctx: RegistryContext) -> None:
        self._ctx = ctx
        self._driver = ctx.driver
        self._sessions = ctx.sessions
        self._blobs = BlobStore(ctx)

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self, repository: str, *, persist: bool = True) -> Upload:
        """A new, empty session. `persist=False` for a single-request upload (POST with
        `?digest=`), which needs no row: it ends in the same request."""
        upload = Upload(str(uuid.uuid4()), repository, 0, Digest("sha256", "").hasher(), persist)
        ctx = self._ctx

        def create() -> None:
            storage_call(lambda: self._driver.create_upload(upload.id))
            if persist:
                now = ctx.clock.now()
                try:
                    ctx.records.write(
                        lambda s: s.add(
                            t.UploadRecord(
                                id=upload.id, repository=repository, created_at=now, updated_at=now
                            )
                        )
                    )
                except RegistryUnavailable:  # no row (a full disk): leave no file either
                    with contextlib.suppress(StorageError):
                        self._driver.delete_upload(upload.id)
                    raise

        await anyio.to_thread.run_sync(create)
        self._sessions.remember(upload)
        return upload

    async def find(self, repository: str, upload_id: str) -> Upload:
        """The live session, rebuilt from its row and file when it is not in memory."""
        upload = self._sessions.get(upload_id)
        if upload is not None:
            if upload.repository != repository:
                raise BlobUploadUnknown("blob upload unknown to registry", {"uuid": upload_id})
            return upload
        found = await anyio.to_thread.run_sync(self._restore, repository, upload_id)
        self._sessions.remember(found)
        return found

    def _restore(self, repository: str, upload_id: str) -> Upload:
        unknown = BlobUploadUnknown("blob upload unknown to registry", {"uuid": upload_id[:80]})
        with self._ctx.records.read() as s:
            row = s.scalar(
                sa.select(t.UploadRecord.repository).where(t.UploadRecord.id == upload_id)
            )
        if row is None or row != repository:
            raise unknown
        try:
            size = self._driver.upload_size(upload_id)
        except UploadNotFound as exc:
            raise unknown from exc
        except StorageError as exc:
            raise RegistryUnavailable(f"storage error: {exc}") from exc
        return Upload(upload_id, repository, size, None)

    async def status(self, repository: str, upload_id: str) -> Upload:
        """The session with the size the storage has now (another process may have appended
        since this one last saw it), or this process's count while it is appending to it."""
        upload = await self.find(repository, upload_id)
        if self._sessions.is_busy(upload.id):
            return upload
        stored = await anyio.to_thread.run_sync(self._stored_size, upload.id)
        if stored != upload.size:
            upload.size, upload.hasher = stored, None  # rebuilt when next needed
        return upload

    def _stored_size(self, upload_id: str) -> int:
        try:
            return self._driver.upload_size(upload_id)
        except UploadNotFound as exc:
            self._sessions.forget(upload_id)
            raise BlobUploadUnknown("blob upload unknown to registry") from exc
        except StorageError as exc:
            raise RegistryUnavailable(f"storage error: {exc}") from exc

    async def cancel(self, repository: str, upload_id: str) -> None:
        """End a session (BLOB_UPLOAD_INVALID while a request, here or in another process,
        is appending to it)."""
        upload = await self.find(repository, upload_id)
        with self._sessions.claim(upload.id):
            hold = Hold(self._ctx.records, upload, self._ctx.process)
            # A database that cannot write (a full disk) can record no hold, for anyone:
            # the bytes go all the same, freeing space comes first.
            with contextlib.suppress(RegistryUnavailable):
                await hold.take()
            try:
                self._sessions.forget(upload.id)
                await anyio.to_thread.run_sync(self._delete, upload.id)  # the row and its hold
            finally:
                hold.release_later()

    async def discard(self, upload: Upload) -> None:
        """End a session that failed (best effort: the gc removes what this misses)."""
        self._sessions.forget(upload.id)
        with contextlib.suppress(RegistryUnavailable):
            await anyio.to_thread.run_sync(self._delete, upload.id)

    def _delete(self, upload_id: str) -> None:
        # Bytes first: on a full disk the row's delete may fail, the file's never does, and a
        # row without its file is only a session that answers 404.
        storage_call(lambda: self._driver.delete_upload(upload_id))
        self._ctx.records.write(
            lambda s: s.execute(sa.delete(t.UploadRecord).where(t.UploadRecord.id == upload_id))
        )

    # -- data ------------------------------------------------------------------------------
    async def append(
        self,
        upload: Upload,
        body: AsyncIterator[bytes],
        content_range: ByteRange | None = None,
        content_length: int | None = None,
    ) -> int:
        """Append a chunk (the whole request body) and return the upload's new size.

        With a Content-Range the chunk must start exactly where the upload ends (else 416)
        and be exactly as long as the range says. Without one the body is appended as it
        streams (docker's streamed PATCH).
        """
        with self._sessions.claim(upload.id):
            hold = Hold(self._ctx.records, upload, self._ctx.process)
            await hold.take()
            try:
                writer = await self._open_writer(upload)
            except BaseException:
                hold.release_later()
                raise
            return await self._append(upload, hold, writer, body, content_range, content_length)

    async def _append(
        self,
        upload: Upload,
        hold: Hold,
        writer: UploadWriter,
        body: AsyncIterator[bytes],
        content_range: ByteRange | None,
        content_length: int | None,
    ) -> int:
        if upload.hasher is None or writer.size != upload.size:
            # Another process appended since this one saw the upload (or the storage kept
            # less than this process counted: a remote driver's last bytes lost after the
            # client went away): go on from what the storage has.
            await anyio.to_thread.run_sync(writer.close)
            await self._rehash(upload)
            writer = await self._open_writer(upload)
        start = upload.size
        snapshot = upload.hasher.copy()
        spooled = _Spool(writer, upload.hasher)
        try:
            if content_range is not None:
                _check_range(content_range, start, content_length)
            try:
                async for chunk in body:
                    await spooled.add(chunk)
            finally:
                await spooled.drain()  # the file is never closed under a write in flight
            upload.size = writer.size
            received = writer.size - start
            expected = content_range.length if content_range else content_length
            if expected is not None and received != expected:
                await anyio.to_thread.run_sync(writer.truncate, start)
                upload.size, upload.hasher = start, snapshot
                raise BlobUploadInvalid(
                    "chunk length does not match its Content-Range or Content-Length",
                    {"received": received, "expected": expected},
                )
            # A remote driver sends its last part here; if that fails, it kept nothing of
            # this chunk, and the truncate below says so.
            await spooled.finish()
            await hold.release()
        except StorageError as exc:
            # Half a chunk is of no use to anyone (the client sends it again) and, on a full
            # disk, is the space everyone else needs: cut the file back to where it was.
            try:
                await anyio.to_thread.run_sync(writer.truncate, start)
                upload.size, upload.hasher = start, snapshot
            except StorageError:
                upload.hasher = None  # rebuild from whatever reached the file
            raise RegistryUnavailable(f"storage error: {exc}") from exc
        except BaseException:
            # The client went away mid-chunk (or the request was cancelled): the file keeps
            # what reached it, and the size and hash say so.
            upload.size = writer.size
            raise
        finally:
            hold.stop_renewing()
            spooled.close(then=hold.release_now)
        return upload.size

    async def _open_writer(self, upload: Upload) -> UploadWriter:
        """A writer at the upload's end (opening one waits on the network with S3)."""
        try:
            return await anyio.to_thread.run_sync(self._driver.append, upload.id)
        except UploadNotFound as exc:
            self._sessions.forget(upload.id)
            raise BlobUploadUnknown("blob upload unknown to registry") from exc
        except StorageError as exc:
            raise RegistryUnavailable(f"storage error: {exc}") from exc

    async def _rehash(self, upload: Upload) -> None:
        def rebuild() -> tuple[int, Any]:
            hasher = Digest("sha256", "").hasher()
            size = 0
            reader = storage_call(lambda: self._driver.read_upload(upload.id))
            try:
                while chunk := reader.read(READ_CHUNK):
                    hasher.update(chunk)
                    size += len(chunk)
            finally:
                reader.close()
            return size, hasher

        upload.size, upload.hasher = await anyio.to_thread.run_sync(rebuild)

    async def finish(self, upload: Upload, digest: Digest) -> BlobInfo:
        """Verify the upload against `digest` and make it a blob of its repository.

        A mismatch ends the session (DIGEST_INVALID): its bytes can never become that blob.
        """
        with self._sessions.claim(upload.id):
            hold = Hold(self._ctx.records, upload, self._ctx.process)
            await hold.take()
            try:
                return await self._finish(upload, digest, shared=hold.shared)
            finally:
                hold.release_later()  # the commit deleted the row, or a failure left it

    async def _finish(self, upload: Upload, digest: Digest, *, shared: bool) -> BlobInfo:
        if shared:  # another process may have appended to it (alone, this one counted all)
            stored = await anyio.to_thread.run_sync(self._stored_size, upload.id)
            if stored != upload.size:  # another process appended since: hash what is stored
                upload.hasher = None
        if upload.hasher is None:
            await self._rehash(upload)
        if digest.algorithm == "sha256":
            actual = upload.hasher.hexdigest()
        else:
            actual = await anyio.to_thread.run_sync(self._hash_file, upload.id, digest)
        if actual != digest.hex:
            self._sessions.forget(upload.id)
            await anyio.to_thread.run_sync(self._delete, upload.id)
            raise DigestInvalid(
                "provided digest did not match uploaded content",
                {"expected": str(digest), "size": upload.size},
            )
        info = await anyio.to_thread.run_sync(
            self._blobs.commit, upload.repository, upload.id, digest
        )
        self._sessions.forget(upload.id)
        return info

    def _hash_file(self, upload_id: str, digest: Digest) -> str:
        hasher = digest.hasher()
        reader = storage_call(lambda: self._driver.read_upload(upload_id))
        try:
            while chunk := reader.read(READ_CHUNK):
                hasher.update(chunk)
        finally:
            reader.close()
        return str(hasher.hexdigest())


def _check_range(content_range: ByteRange, start: int, content_length: int | None) -> None:
    """A chunk must start where the upload ends, and be as long as its range says."""
    if content_range.start != start:
        raise UploadRangeInvalid(
            "chunk out of order or overlapping",
            {"start": start, "range": f"{content_range.start}-{content_range.end}"},
        )
    if content_length is not None and content_length != content_range.length:
        raise BlobUploadInvalid(
            "Content-Length does not match Content-Range",
            {"length": content_length, "range_length": content_range.length},
        )
