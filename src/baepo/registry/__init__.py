"""The registry room: an OCI Distribution Spec v1.1 (and Docker Registry HTTP API v2) registry.

Public surface for the composition root, the API room and the CLI:

    Registry(db, driver, bus, clock)     the registry as plain Python (service.py)
    create_app(registry, gate)           the ASGI app for every path under /v2 (web/app.py)
    GcReport                             what a garbage collection freed (gc.py)

Module map: references (names, tags, digests), manifests (validation), ranges, pagination
(pure); tables (SQLAlchemy); service (Registry); sessions (blob uploads); gc; web/ (HTTP);
errors (the error tree and OCI codes).
"""

from baepo.registry.errors import (
    BlobUnknown,
    DigestInvalid,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    RegistryError,
    RegistryUnavailable,
    TagInvalid,
)
from baepo.registry.gc import GcReport
from baepo.registry.manifests import Descriptor
from baepo.registry.service import (
    ImageInfo,
    PushEvent,
    PushResult,
    Registry,
    RepositoryInfo,
    StoredManifest,
)
from baepo.registry.web import create_app

__all__ = [
    "BlobUnknown",
    "Descriptor",
    "DigestInvalid",
    "GcReport",
    "ImageInfo",
    "ManifestInvalid",
    "ManifestUnknown",
    "NameInvalid",
    "NameUnknown",
    "PushEvent",
    "PushResult",
    "Registry",
    "RegistryError",
    "RegistryUnavailable",
    "RepositoryInfo",
    "StoredManifest",
    "TagInvalid",
    "create_app",
]
