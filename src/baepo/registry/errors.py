"""Errors of the registry room, each carrying its OCI error code and HTTP status.

    RegistryError                      (code, status)
    ├── NameInvalid                    NAME_INVALID 400
    ├── NameUnknown                    NAME_UNKNOWN 404
    ├── DigestInvalid                  DIGEST_INVALID 400
    ├── BlobUnknown                    BLOB_UNKNOWN 404
    ├── BlobUploadInvalid              BLOB_UPLOAD_INVALID 400
    │   └── UploadRangeInvalid         BLOB_UPLOAD_INVALID 416 (chunk out of order / overlapping)
    ├── BlobUploadUnknown              BLOB_UPLOAD_UNKNOWN 404
    ├── RangeNotSatisfiable            RANGE_INVALID 416 (a blob GET's Range beyond the blob)
    ├── ManifestInvalid                MANIFEST_INVALID 400
    ├── TagInvalid                     TAG_INVALID 400 (a push under a tag the grammar refuses)
    ├── ManifestUnknown                MANIFEST_UNKNOWN 404
    ├── ManifestBlobUnknown            MANIFEST_BLOB_UNKNOWN 400
    ├── SizeInvalid                    SIZE_INVALID 400
    │   └── ManifestTooLarge           SIZE_INVALID 413
    ├── PaginationInvalid              PAGINATION_NUMBER_INVALID 400
    ├── Unauthorized                   UNAUTHORIZED 401 (no or bad credentials)
    ├── Denied                         DENIED 403 (credentials without the scope: the client
    │                                  may fetch a token with the scope named in the challenge)
    ├── Unsupported                    UNSUPPORTED 405
    ├── TooManyRequests                TOOMANYREQUESTS 429
    ├── RegistryUnavailable            UNAVAILABLE 503 (the database or the storage failed)
    ├── LifecyclePolicyInvalid         LIFECYCLE_POLICY_INVALID 400 (not an OCI code: only the
    │                                  API and the AWS endpoint set policies)
    └── LifecyclePolicyUnknown         LIFECYCLE_POLICY_UNKNOWN 404 (the repository has none)

Foreign exceptions are mapped once: SQLAlchemy errors in `records.py`, storage errors there
(`storage_call`) or where a driver error means a registry one (a missing blob or upload: in
`blobs.py`, `manifest_store.py`, `uploads.py`), auth errors in `web/call.py`; the HTTP edge
turns any `RegistryError` into the OCI error body `{"errors":[{"code","message","detail"}]}`.
"""

from __future__ import annotations

from typing import Any, ClassVar


class RegistryError(Exception):
    code: ClassVar[str] = "UNKNOWN"
    status: ClassVar[int] = 500
    default_message: ClassVar[str] = "unknown error"

    def __init__(
        self,
        message: str | None = None,
        detail: Any = None,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.detail = detail
        if status is not None:
            self.status = status  # type: ignore[misc]  # one instance's status may differ
        self.headers: dict[str, str] = headers or {}
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "detail": self.detail}


class NameInvalid(RegistryError):
    code, status, default_message = "NAME_INVALID", 400, "invalid repository name"


class NameUnknown(RegistryError):
    code, status, default_message = "NAME_UNKNOWN", 404, "repository name not known to registry"


class DigestInvalid(RegistryError):
    code, status = "DIGEST_INVALID", 400
    default_message = "provided digest did not match uploaded content"


class BlobUnknown(RegistryError):
    code, status, default_message = "BLOB_UNKNOWN", 404, "blob unknown to registry"


class BlobUploadInvalid(RegistryError):
    code, status, default_message = "BLOB_UPLOAD_INVALID", 400, "blob upload invalid"


class UploadRangeInvalid(BlobUploadInvalid):
    status = 416
    default_message = "chunk out of order or overlapping"


class BlobUploadUnknown(RegistryError):
    code, status, default_message = "BLOB_UPLOAD_UNKNOWN", 404, "blob upload unknown to registry"


class RangeNotSatisfiable(RegistryError):
    code, status, default_message = "RANGE_INVALID", 416, "requested range not satisfiable"

    def __init__(self, size: int, message: str | None = None) -> None:
        super().__init__(message, {"size": size})
        self.size = size


class ManifestInvalid(RegistryError):
    code, status, default_message = "MANIFEST_INVALID", 400, "manifest invalid"


class TagInvalid(RegistryError):
    code, status, default_message = "TAG_INVALID", 400, "manifest tag did not match URI"


class ManifestUnknown(RegistryError):
    code, status, default_message = "MANIFEST_UNKNOWN", 404, "manifest unknown"


class ManifestBlobUnknown(RegistryError):
    code, status = "MANIFEST_BLOB_UNKNOWN", 400
    default_message = "manifest references a manifest or blob unknown to registry"


class SizeInvalid(RegistryError):
    code, status, default_message = "SIZE_INVALID", 400, "provided length did not match content"


class ManifestTooLarge(SizeInvalid):
    status = 413
    default_message = "manifest too large"


class PaginationInvalid(RegistryError):
    code, status, default_message = "PAGINATION_NUMBER_INVALID", 400, "invalid number of results"


class Unauthorized(RegistryError):
    code, status, default_message = "UNAUTHORIZED", 401, "authentication required"


class Denied(RegistryError):
    code, status, default_message = "DENIED", 403, "requested access to the resource is denied"


class Unsupported(RegistryError):
    code, status, default_message = "UNSUPPORTED", 405, "the operation is unsupported"


class TooManyRequests(RegistryError):
    code, status, default_message = "TOOMANYREQUESTS", 429, "too many requests"


class RegistryUnavailable(RegistryError):
    code, status, default_message = "UNAVAILABLE", 503, "registry storage is unavailable"


class LifecyclePolicyInvalid(RegistryError):
    code, status, default_message = "LIFECYCLE_POLICY_INVALID", 400, "invalid lifecycle policy"


class LifecyclePolicyUnknown(RegistryError):
    code, status = "LIFECYCLE_POLICY_UNKNOWN", 404
    default_message = "the repository has no lifecycle policy"
