"""Manifest validation, as a pure function: `parse_manifest(bytes, content_type) -> Manifest`.

Accepted documents (schemaVersion 2 JSON objects):

    application/vnd.oci.image.manifest.v1+json                   config + layers
    application/vnd.docker.distribution.manifest.v2+json         config + layers
    application/vnd.oci.image.index.v1+json                      manifests
    application/vnd.docker.distribution.manifest.list.v2+json    manifests

The media type is the document's `mediaType` field; when it is absent (allowed for OCI) the
request's Content-Type, and failing that the document's shape, decides. A `mediaType` field that
contradicts a manifest Content-Type is MANIFEST_INVALID: the registry serves the document back
with the type it was stored under, so the two must agree. Docker schema 1 is not accepted.

The parsed `Manifest` names what the registry must check before storing it (`blobs`,
`children`) and what the referrers API reports (`subject`, `referrer_artifact_type`,
`annotations`). The bytes themselves are stored unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from baepo.registry.errors import DigestInvalid, ManifestInvalid
from baepo.registry.references import parse_digest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = IMAGE_TYPES | INDEX_TYPES

MAX_MANIFEST_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    urls: tuple[str, ...] = ()
    artifact_type: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest}
        out["size"] = self.size
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


@dataclass(frozen=True)
class Manifest:
    media_type: str
    config: Descriptor | None = None
    layers: tuple[Descriptor, ...] = ()
    manifests: tuple[Descriptor, ...] = ()
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def blobs(self) -> tuple[str, ...]:
        """Digests of the blobs that must be in the repository: config and layers, except
        non-distributable layers that name their own `urls`."""
        found: list[str] = []
        if self.config is not None:
            found.append(self.config.digest)
        found += [d.digest for d in self.layers if not d.urls]
        return tuple(dict.fromkeys(found))

    @property
    def blob_sizes(self) -> dict[str, int]:
        """What the descriptors of `blobs` say each one's size is."""
        return {d.digest: d.size for d in self._described_blobs()}

    @property
    def child_sizes(self) -> dict[str, int]:
        return {d.digest: d.size for d in self.manifests}

    @property
    def sizes_agree(self) -> bool:
        """No digest is described with two different sizes."""
        described = [*self._described_blobs(), *self.manifests]
        return len({(d.digest, d.size) for d in described}) == len({d.digest for d in described})

    def _described_blobs(self) -> list[Descriptor]:
        described = [self.config] if self.config is not None else []
        return described + [d for d in self.layers if not d.urls]

    @property
    def children(self) -> tuple[str, ...]:
        """Digests of the manifests an index refers to (they must be in the repository)."""
        return tuple(dict.fromkeys(d.digest for d in self.manifests))

    @property
    def referrer_artifact_type(self) -> str | None:
        """What the referrers API reports: `artifactType`, else (for an image manifest) the
        config's media type; an index without `artifactType` reports none."""
        if self.artifact_type:
            return self.artifact_type
        if self.config is not None:
            return self.config.media_type
        return None


def bare_media_type(content_type: str | None) -> str | None:
    """`application/x; charset=utf-8` -> `application/x` (parameters are ignored)."""
    if not content_type:
        return None
    bare = content_type.split(";", 1)[0].strip().lower()
    return bare or None


def parse_manifest(data: bytes, content_type: str | None) -> Manifest:
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestInvalid("manifest too large", {"size": len(data)})
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ManifestInvalid(f"manifest is not valid JSON: {exc}") from exc
    except RecursionError as exc:  # `[[[[…]]]]` nested deeper than the parser recurses
        raise ManifestInvalid("manifest JSON is nested too deeply") from exc
    if not isinstance(doc, dict):
        raise ManifestInvalid("manifest is not a JSON object")
    version = doc.get("schemaVersion")
    if type(version) is not int or version != 2:
        raise ManifestInvalid("schemaVersion must be 2", {"schemaVersion": version})
    media_type = _media_type(doc, bare_media_type(content_type))
    annotations = _annotations(doc.get("annotations"), "annotations")
    artifact_type = _optional_str(doc.get("artifactType"), "artifactType")
    subject = _descriptor(doc["subject"], "subject") if doc.get("subject") is not None else None
    if media_type in INDEX_TYPES:
        children = doc.get("manifests")
        if not isinstance(children, list):
            raise ManifestInvalid("an index needs a `manifests` array")
        return Manifest(
            media_type,
            manifests=tuple(_descriptor(c, f"manifests[{i}]") for i, c in enumerate(children)),
            subject=subject,
            artifact_type=artifact_type,
            annotations=annotations,
        )
    if "config" not in doc:
        raise ManifestInvalid("a manifest needs a `config` descriptor")
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise ManifestInvalid("a manifest needs a `layers` array")
    return Manifest(
        media_type,
        config=_descriptor(doc["config"], "config"),
        layers=tuple(_descriptor(layer, f"layers[{i}]") for i, layer in enumerate(layers)),
        subject=subject,
        artifact_type=artifact_type,
        annotations=annotations,
    )


def _media_type(doc: dict[str, Any], content_type: str | None) -> str:
    field_type = doc.get("mediaType")
    if field_type is not None:
        if not isinstance(field_type, str) or field_type not in MANIFEST_TYPES:
            raise ManifestInvalid("unsupported manifest mediaType", {"mediaType": field_type})
        if content_type in MANIFEST_TYPES and content_type != field_type:
            raise ManifestInvalid(
                "Content-Type does not match the manifest's mediaType",
                {"contentType": content_type, "mediaType": field_type},
            )
        return field_type
    if content_type in MANIFEST_TYPES:
        if content_type in (DOCKER_MANIFEST, DOCKER_LIST):
            raise ManifestInvalid("a Docker manifest must carry its mediaType")
        return content_type
    if "manifests" in doc:
        return OCI_INDEX
    if "config" in doc:
        return OCI_MANIFEST
    raise ManifestInvalid("unknown manifest type", {"contentType": content_type})


def _descriptor(value: Any, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise ManifestInvalid(f"{where} is not a descriptor")
    media_type = value.get("mediaType")
    if not isinstance(media_type, str) or not media_type:
        raise ManifestInvalid(f"{where}.mediaType is missing")
    digest = value.get("digest")
    if not isinstance(digest, str):
        raise ManifestInvalid(f"{where}.digest is missing")
    try:
        parsed = parse_digest(digest)
    except DigestInvalid as exc:
        raise ManifestInvalid(f"{where}.digest: {exc.message}", {"digest": digest[:200]}) from exc
    size = value.get("size")
    if type(size) is not int or size < 0:
        raise ManifestInvalid(f"{where}.size must be a non-negative integer")
    urls = value.get("urls") or []
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise ManifestInvalid(f"{where}.urls must be an array of strings")
    return Descriptor(
        media_type,
        str(parsed),
        size,
        tuple(urls),
        _optional_str(value.get("artifactType"), f"{where}.artifactType"),
        _annotations(value.get("annotations"), f"{where}.annotations"),
    )


def _optional_str(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ManifestInvalid(f"{where} must be a string")
    return value or None


def _annotations(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ManifestInvalid(f"{where} must map strings to strings")
    return dict(value)
