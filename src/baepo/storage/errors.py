"""Errors of the storage room.

StorageError
├── InvalidKey        a digest or upload id that is not well-formed; refused before any
│                     path is built, so nothing a client sends can leave the storage root
├── BlobNotFound      no blob with that digest
├── UploadNotFound    no upload with that id
└── StorageFailure    the backend failed (disk full, permissions, I/O error); wraps the
                      OSError (or the backend's own exception) as its cause
"""

from __future__ import annotations


class StorageError(Exception):
    pass


class InvalidKey(StorageError):
    pass


class BlobNotFound(StorageError):
    pass


class UploadNotFound(StorageError):
    pass


class StorageFailure(StorageError):
    pass
