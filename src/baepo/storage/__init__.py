"""Blob storage behind one small interface (`StorageDriver`).

Implementations: `FilesystemDriver` (the default; on-disk layout in its module docstring),
`S3Driver` (a bucket on any S3 server; layout in `s3.py`) and `MemoryDriver` (for tests of
other rooms). All pass the same conformance suite (`tests/storage/test_drivers.py`), S3's
against a real S3 server.

`S3Driver` and `S3Settings` are imported on first use: boto3 costs ~40 MiB resident, which a
registry on the filesystem does not pay.
"""

from typing import TYPE_CHECKING, Any

from baepo.storage.driver import BlobInfo, BlobReader, StorageDriver, UploadInfo, UploadWriter
from baepo.storage.errors import (
    BlobNotFound,
    InvalidKey,
    StorageError,
    StorageFailure,
    UploadNotFound,
)
from baepo.storage.filesystem import FilesystemDriver
from baepo.storage.memory import MemoryDriver

if TYPE_CHECKING:
    from baepo.storage.s3 import S3Driver, S3Settings


def __getattr__(name: str) -> Any:
    if name in ("S3Driver", "S3Settings"):
        from baepo.storage import s3

        return getattr(s3, name)
    raise AttributeError(f"module 'baepo.storage' has no attribute {name!r}")


__all__ = [
    "BlobInfo",
    "BlobNotFound",
    "BlobReader",
    "FilesystemDriver",
    "InvalidKey",
    "MemoryDriver",
    "S3Driver",
    "S3Settings",
    "StorageDriver",
    "StorageError",
    "StorageFailure",
    "UploadInfo",
    "UploadNotFound",
    "UploadWriter",
]
