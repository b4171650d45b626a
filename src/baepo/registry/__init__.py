"""The registry room: an OCI Distribution Spec v1.1 (and Docker Registry HTTP API v2) registry.

Public surface for the composition root, the API room and the CLI:

    Registry(db, driver, bus, clock)     the registry as plain Python (service.py)
    LifecyclePolicies(registry, in_use, clock)
                                         ECR's lifecycle policies applied: preview, on demand,
                                         and periodically (`run`) (expiry.py)
    create_app(registry, gate)           the ASGI app for every path under /v2 (web/app.py)
    GcReport, DEFAULT_GRACE_SECONDS      what a garbage collection freed, and its default
                                         grace period (gc.py)
    parse_manifest, Manifest             a stored manifest's document read (for the API's
                                         description of an image) (manifests.py)

Module map:
    pure        references (names, tags, digests), manifests (validation), ranges, pagination,
                mutability (which tags may move), lifecycle (policies and what they expire)
    plumbing    tables (SQLAlchemy), records (transactions, error mapping, the blob guard),
                sessions (upload sessions in memory), context (what every concern works over),
                rows (the hot rows, with statements built once)
    concerns    repositories, tags, manifest_store, referrers, blobs, uploads, pushes, gc,
                expiry (lifecycle policies applied; their rules are the pure lifecycle.py)
    facade      service (Registry: one-line delegations to the concerns)
    edge        web/ (HTTP: app routes, call authorizes, one module of handlers per resource)
    errors      the error tree and OCI codes
"""

from baepo.registry.errors import (
    BlobUnknown,
    DigestInvalid,
    LifecyclePolicyInvalid,
    LifecyclePolicyUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    RegistryError,
    RegistryUnavailable,
    TagInvalid,
)
from baepo.registry.expiry import InUse, LifecyclePolicies
from baepo.registry.gc import DEFAULT_GRACE_SECONDS, GcReport
from baepo.registry.lifecycle import Expiry
from baepo.registry.manifest_store import ImageInfo, PushResult, StoredManifest
from baepo.registry.manifests import Descriptor, Manifest, parse_manifest
from baepo.registry.mutability import TagMutability
from baepo.registry.pushes import PushEvent
from baepo.registry.repositories import RepositoryInfo
from baepo.registry.service import Registry
from baepo.registry.web import create_app

__all__ = [
    "DEFAULT_GRACE_SECONDS",
    "BlobUnknown",
    "Descriptor",
    "DigestInvalid",
    "Expiry",
    "GcReport",
    "ImageInfo",
    "InUse",
    "LifecyclePolicies",
    "LifecyclePolicyInvalid",
    "LifecyclePolicyUnknown",
    "Manifest",
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
    "TagMutability",
    "create_app",
    "parse_manifest",
]
