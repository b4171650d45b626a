"""The filesystem driver: blobs as files under one root directory.

On-disk layout (everything below `root`, nothing outside it)::

    root/
    ├── blobs/
    │   ├── sha256/
    │   │   └── 4f/                    first two hex digits: keeps directories small
    │   │       └── 4f53...c9          the blob's bytes, named by the rest of its digest
    │   └── sha512/
    │       └── ab/ab12...ef
    ├── uploads/
    │   └── 6f1c...-...-...            one append-only file per upload session, named by its id
    └── tmp/
        └── put-<random>               a blob being written by `put`; renamed into blobs/

Atomicity: a blob only ever appears in `blobs/` by `os.replace` of a complete, fsynced file
(from `tmp/` or `uploads/`, the same filesystem), followed by an fsync of the directory. A
process killed mid-write leaves a file in `tmp/` or `uploads/` — never a partial blob. The
registry's garbage collector removes such leftovers after a grace period (`sweep_temp`,
`delete_upload`).

Keys are validated (see `driver.check_digest`) before any path is built, so no client input
reaches the filesystem unchecked.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from baepo.storage.driver import (
    BlobInfo,
    BlobReader,
    UploadInfo,
    UploadWriter,
    check_digest,
    check_upload_id,
)
from baepo.storage.errors import BlobNotFound, InvalidKey, StorageFailure, UploadNotFound


def _mtime(st: os.stat_result) -> datetime:
    return datetime.fromtimestamp(st.st_mtime, UTC)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _FileReader:
    def __init__(self, path: Path, offset: int) -> None:
        self._file = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        if offset:
            self._file.seek(offset)

    def read(self, size: int) -> bytes:
        try:
            return self._file.read(size) or b""
        except OSError as exc:
            raise StorageFailure(f"cannot read blob: {exc}") from exc

    def close(self) -> None:
        self._file.close()


class _FileWriter:
    def __init__(self, path: Path) -> None:
        self._file = open(path, "r+b", buffering=0)  # noqa: SIM115 - closed by close()
        self._size = self._file.seek(0, os.SEEK_END)

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                written = self._file.write(view)
                if written is None:  # pragma: no cover - only for non-blocking files
                    continue
                view = view[written:]
                self._size += written
        except OSError as exc:
            raise StorageFailure(f"cannot write upload: {exc}") from exc

    def truncate(self, size: int) -> None:
        try:
            self._file.truncate(size)
            self._file.seek(size)
        except OSError as exc:
            raise StorageFailure(f"cannot truncate upload: {exc}") from exc
        self._size = size

    def close(self) -> None:
        self._file.close()


class FilesystemDriver:
    """Blobs in a directory tree (layout in the module docstring)."""

    remote = False

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self._blobs = self.root / "blobs"
        self._uploads = self.root / "uploads"
        self._tmp = self.root / "tmp"
        try:
            for d in (self._blobs, self._uploads, self._tmp):
                d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageFailure(f"cannot create storage root {self.root}: {exc}") from exc

    def __repr__(self) -> str:
        return f"FilesystemDriver({str(self.root)!r})"

    # -- paths -----------------------------------------------------------------------------
    def _blob_path(self, digest: str) -> Path:
        algorithm, hexpart = check_digest(digest)
        return self._blobs / algorithm / hexpart[:2] / hexpart

    def _upload_path(self, upload_id: str) -> Path:
        return self._uploads / check_upload_id(upload_id)

    # -- blobs -----------------------------------------------------------------------------
    def stat(self, digest: str) -> BlobInfo | None:
        try:
            st = self._blob_path(digest).stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageFailure(f"cannot stat blob {digest}: {exc}") from exc
        return BlobInfo(digest, st.st_size, _mtime(st))

    def get(self, digest: str) -> bytes:
        try:
            return self._blob_path(digest).read_bytes()
        except FileNotFoundError as exc:
            raise BlobNotFound(digest) from exc
        except OSError as exc:
            raise StorageFailure(f"cannot read blob {digest}: {exc}") from exc

    def open(self, digest: str, offset: int = 0) -> BlobReader:
        try:
            return _FileReader(self._blob_path(digest), offset)
        except FileNotFoundError as exc:
            raise BlobNotFound(digest) from exc
        except OSError as exc:
            raise StorageFailure(f"cannot open blob {digest}: {exc}") from exc

    def put(self, digest: str, data: bytes) -> BlobInfo:
        target = self._blob_path(digest)
        tmp = self._tmp / f"put-{secrets.token_hex(12)}"
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            self._install(tmp, target)
            st = target.stat()
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise StorageFailure(f"cannot store blob {digest}: {exc}") from exc
        return BlobInfo(digest, st.st_size, _mtime(st))

    def _install(self, source: Path, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
        _fsync_dir(target.parent)

    def delete(self, digest: str) -> bool:
        try:
            self._blob_path(digest).unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StorageFailure(f"cannot delete blob {digest}: {exc}") from exc
        return True

    def blobs(self) -> Iterator[BlobInfo]:
        for algorithm_dir in sorted(self._blobs.iterdir()):
            for prefix_dir in sorted(algorithm_dir.iterdir()):
                for entry in os.scandir(prefix_dir):
                    digest = f"{algorithm_dir.name}:{entry.name}"
                    try:
                        check_digest(digest)
                        st = entry.stat()
                    except (OSError, InvalidKey):
                        continue  # a stray name, or removed meanwhile
                    yield BlobInfo(digest, st.st_size, _mtime(st))

    def redirect_url(self, digest: str) -> str | None:
        return None

    # -- uploads ---------------------------------------------------------------------------
    def create_upload(self, upload_id: str) -> None:
        try:
            self._upload_path(upload_id).write_bytes(b"")
        except OSError as exc:
            raise StorageFailure(f"cannot create upload {upload_id}: {exc}") from exc

    def append(self, upload_id: str) -> UploadWriter:
        try:
            return _FileWriter(self._upload_path(upload_id))
        except FileNotFoundError as exc:
            raise UploadNotFound(upload_id) from exc
        except OSError as exc:
            raise StorageFailure(f"cannot open upload {upload_id}: {exc}") from exc

    def upload_size(self, upload_id: str) -> int:
        try:
            return self._upload_path(upload_id).stat().st_size
        except FileNotFoundError as exc:
            raise UploadNotFound(upload_id) from exc
        except OSError as exc:
            raise StorageFailure(f"cannot stat upload {upload_id}: {exc}") from exc

    def read_upload(self, upload_id: str, offset: int = 0) -> BlobReader:
        try:
            return _FileReader(self._upload_path(upload_id), offset)
        except FileNotFoundError as exc:
            raise UploadNotFound(upload_id) from exc
        except OSError as exc:
            raise StorageFailure(f"cannot read upload {upload_id}: {exc}") from exc

    def commit_upload(self, upload_id: str, digest: str) -> BlobInfo:
        source = self._upload_path(upload_id)
        target = self._blob_path(digest)
        try:
            fd = os.open(source, os.O_RDONLY)
        except FileNotFoundError as exc:
            raise UploadNotFound(upload_id) from exc
        except OSError as exc:
            raise StorageFailure(f"cannot open upload {upload_id}: {exc}") from exc
        try:
            if target.exists():
                # Same digest, same bytes: keep the stored blob, just mark it fresh.
                os.utime(target)
                source.unlink()
            else:
                os.fsync(fd)
                self._install(source, target)
            st = target.stat()
        except OSError as exc:
            raise StorageFailure(f"cannot commit upload {upload_id}: {exc}") from exc
        finally:
            os.close(fd)
        return BlobInfo(digest, st.st_size, _mtime(st))

    def delete_upload(self, upload_id: str) -> bool:
        try:
            self._upload_path(upload_id).unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StorageFailure(f"cannot delete upload {upload_id}: {exc}") from exc
        return True

    def uploads(self) -> Iterator[UploadInfo]:
        for entry in os.scandir(self._uploads):
            try:
                check_upload_id(entry.name)
                st = entry.stat()
            except (OSError, InvalidKey):
                continue
            yield UploadInfo(entry.name, st.st_size, _mtime(st))

    def sweep_temp(self, older_than: datetime, *, dry_run: bool = False) -> tuple[int, int]:
        files = freed = 0
        for entry in os.scandir(self._tmp):
            try:
                st = entry.stat()
                if _mtime(st) >= older_than:
                    continue
                if not dry_run:
                    os.unlink(entry.path)
            except OSError as exc:
                if exc.errno == errno.ENOENT:
                    continue
                raise StorageFailure(f"cannot remove {entry.path}: {exc}") from exc
            files += 1
            freed += st.st_size
        return files, freed
