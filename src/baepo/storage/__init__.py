"""Blob storage behind one small interface (`StorageDriver`).

Implementations: `FilesystemDriver` (the default; on-disk layout in its module docstring)
and `MemoryDriver` (for tests of other rooms). Both pass the same conformance suite
(`tests/storage/test_drivers.py`).
"""

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

__all__ = [
    "BlobInfo",
    "BlobNotFound",
    "BlobReader",
    "FilesystemDriver",
    "InvalidKey",
    "MemoryDriver",
    "StorageDriver",
    "StorageError",
    "StorageFailure",
    "UploadInfo",
    "UploadNotFound",
    "UploadWriter",
]
