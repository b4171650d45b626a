"""The storage interface: content-addressed blobs and append-only upload files.

The registry is the only client. It verifies every digest before it asks for a blob to be
stored (`put`, `commit_upload`); a driver stores bytes under the key it is given and makes
each write atomic: a reader sees the whole blob or no blob, never a prefix.

Keys are checked here, once, for every driver: a digest is `sha256:<64 hex>` or
`sha512:<128 hex>` (lower case), an upload id is 1-64 characters of `[A-Za-z0-9-]`.

Methods are synchronous. A local driver's are fast (no method blocks on the network), so the
registry may call `open` and `BlobReader.read` from its event loop and runs the slow ones
(`commit_upload`, `put`: they fsync) in a worker thread; a `remote` driver's (S3) may each wait
on the network, and the registry calls all of them from worker threads.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from baepo.storage.errors import InvalidKey

_DIGEST = re.compile(r"sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}")
_UPLOAD_ID = re.compile(r"[A-Za-z0-9-]{1,64}")


def check_digest(digest: str) -> tuple[str, str]:
    """Split a storable digest into (algorithm, hex); InvalidKey for anything else."""
    if not _DIGEST.fullmatch(digest):
        raise InvalidKey(f"not a storable digest: {digest[:150]!r}")
    algorithm, _, hexpart = digest.partition(":")
    return algorithm, hexpart


def check_upload_id(upload_id: str) -> str:
    if not _UPLOAD_ID.fullmatch(upload_id):
        raise InvalidKey(f"not an upload id: {upload_id[:80]!r}")
    return upload_id


@dataclass(frozen=True)
class BlobInfo:
    digest: str
    size: int
    modified: datetime  # timezone-aware UTC


@dataclass(frozen=True)
class UploadInfo:
    id: str
    size: int
    modified: datetime  # last write, timezone-aware UTC


class BlobReader(Protocol):
    """Sequential reads from an offset; `read` returns b"" at the end."""

    def read(self, size: int) -> bytes: ...

    def close(self) -> None: ...


class UploadWriter(Protocol):
    """Appends to one upload. `size` is the upload's length after the last write."""

    @property
    def size(self) -> int: ...

    def write(self, data: bytes) -> None: ...

    def truncate(self, size: int) -> None:
        """Cut the upload back to `size`, the size it had when this writer was opened (undo a
        rejected chunk)."""
        ...

    def close(self) -> None:
        """Keep what was written (a remote driver sends its buffered bytes here)."""
        ...


class StorageDriver(Protocol):
    remote: bool
    """Calls wait on the network: the registry makes every one from a worker thread."""

    # -- blobs -----------------------------------------------------------------------------
    def stat(self, digest: str) -> BlobInfo | None:
        """The blob's size and modification time, or None when it is not stored."""
        ...

    def get(self, digest: str) -> bytes:
        """The whole blob (for small ones: manifests). Raises BlobNotFound."""
        ...

    def open(self, digest: str, offset: int = 0) -> BlobReader:
        """A reader positioned at `offset`. Raises BlobNotFound."""
        ...

    def put(self, digest: str, data: bytes) -> BlobInfo:
        """Store `data` under `digest`, atomically; storing it again is harmless."""
        ...

    def delete(self, digest: str) -> bool:
        """Remove the blob; False when it was not there."""
        ...

    def blobs(self) -> Iterator[BlobInfo]:
        """Every stored blob, in no particular order."""
        ...

    def redirect_url(self, digest: str) -> str | None:
        """A URL a client may fetch the blob from itself (S3's presigned GET), or None when
        the registry sends the bytes."""
        ...

    # -- uploads ---------------------------------------------------------------------------
    def create_upload(self, upload_id: str) -> None:
        """Start an empty upload (a second create of the same id empties it)."""
        ...

    def append(self, upload_id: str) -> UploadWriter:
        """A writer that appends to the upload. Raises UploadNotFound."""
        ...

    def upload_size(self, upload_id: str) -> int:
        """Bytes received so far. Raises UploadNotFound."""
        ...

    def read_upload(self, upload_id: str, offset: int = 0) -> BlobReader:
        """Read back what was uploaded (to rebuild a hash after a restart)."""
        ...

    def commit_upload(self, upload_id: str, digest: str) -> BlobInfo:
        """Make the upload's bytes the blob `digest` (durably, atomically) and end the upload.

        When the blob already exists the upload is simply discarded: two clients pushing the
        same blob at once both succeed. Raises UploadNotFound.
        """
        ...

    def delete_upload(self, upload_id: str) -> bool: ...

    def uploads(self) -> Iterator[UploadInfo]: ...

    def sweep_temp(self, older_than: datetime, *, dry_run: bool = False) -> tuple[int, int]:
        """Remove temp files left by a crash that were last written before `older_than`.

        Returns (files, bytes) removed (or that would be, with `dry_run`).
        """
        ...
