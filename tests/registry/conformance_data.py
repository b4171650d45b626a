"""Content for the OCI distribution conformance suite: blobs, configs, manifests, artifacts.

Everything is generated afresh for each session (random config authors, random layer bytes), so
digests never collide with a previous run against the same registry. The shapes follow the
distribution-spec `conformance/` suite:

    image       config (random author) + one gzip tar layer; the config descriptor also carries
                `data` (the config, base64) and `newUnspecifiedField`, which a registry must keep
    artifact    `subject` -> an image manifest; either `config.mediaType` is the artifact type,
                or `artifactType` is set and the config is the empty JSON blob `{}`
    index       an image index with `artifactType`, `subject` and one annotation
    chunked     a random blob split into two chunks: 0..n/2 and n/2+1..n-1
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import secrets
import string
import tarfile
from dataclasses import dataclass
from typing import Any

MANIFEST_V1 = "application/vnd.oci.image.manifest.v1+json"
INDEX_V1 = "application/vnd.oci.image.index.v1+json"
CONFIG_V1 = "application/vnd.oci.image.config.v1+json"
LAYER_TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
EMPTY_V1 = "application/vnd.oci.empty.v1+json"
OCTET_STREAM = "application/octet-stream"

EMPTY_JSON_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

# The error codes of the distribution spec; a 4xx error body must use one of them.
ERROR_CODES = frozenset(
    {
        "BLOB_UNKNOWN",
        "BLOB_UPLOAD_INVALID",
        "BLOB_UPLOAD_UNKNOWN",
        "DIGEST_INVALID",
        "MANIFEST_BLOB_UNKNOWN",
        "MANIFEST_INVALID",
        "MANIFEST_UNKNOWN",
        "MANIFEST_UNVERIFIED",
        "NAME_INVALID",
        "NAME_UNKNOWN",
        "SIZE_INVALID",
        "TAG_INVALID",
        "UNAUTHORIZED",
        "DENIED",
        "UNSUPPORTED",
    }
)

ANNOTATION_KEY = "org.opencontainers.conformance.test"
ARTIFACT_TYPE_A = "application/vnd.baepo.conformance.signature"
ARTIFACT_TYPE_B = "application/vnd.baepo.conformance.sbom"
ARTIFACT_TYPE_INDEX = "application/vnd.baepo.conformance.bundle"

# A digest of content no test ever uploads, and a reference that is not even a valid tag.
DUMMY_DIGEST = "sha256:" + hashlib.sha256(b"hello world").hexdigest()
NONEXISTENT_MANIFEST = ".INVALID_MANIFEST_NAME"
MALFORMED_DIGEST = "sha256:totallywrong"
INVALID_MANIFEST = b"blablabla"


def digest_of(content: bytes) -> str:
    return "sha256:" + hashlib.sha256(content).hexdigest()


def encode(document: dict[str, Any]) -> bytes:
    """Serialise a JSON document the way the Go suite does (tab-indented, not canonical)."""
    return json.dumps(document, indent="\t").encode()


@dataclass(frozen=True)
class Blob:
    """Bytes with the media type a descriptor gives them."""

    content: bytes
    media_type: str = OCTET_STREAM

    @property
    def digest(self) -> str:
        return digest_of(self.content)

    @property
    def size(self) -> int:
        return len(self.content)

    def descriptor(self, media_type: str | None = None) -> dict[str, Any]:
        return {
            "mediaType": media_type or self.media_type,
            "digest": self.digest,
            "size": self.size,
        }


EMPTY_JSON = Blob(b"{}", EMPTY_V1)
ZERO_LENGTH = Blob(b"")


def random_config() -> Blob:
    """An image config made unique by a random author, as the Go suite does per workflow."""
    author = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(16))
    config = {
        "author": author,
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": []},
    }
    return Blob(encode(config), CONFIG_V1)


def random_layer(size: int = 2048) -> Blob:
    """A gzip-compressed tar holding one file of random text."""
    text = secrets.token_hex(size // 2).encode()
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w") as tar:
        info = tarfile.TarInfo("conformance.txt")
        info.size = len(text)
        info.mtime = 0
        tar.addfile(info, io.BytesIO(text))
    return Blob(gzip.compress(tar_bytes.getvalue(), mtime=0), LAYER_TAR_GZIP)


def random_blob(size: int) -> Blob:
    return Blob(secrets.token_bytes(size))


def image_manifest(
    config: Blob,
    layers: list[Blob],
    *,
    artifact_type: str | None = None,
    config_media_type: str | None = None,
    subject: Blob | None = None,
    annotation: str | None = None,
    embed_config: bool = False,
) -> Blob:
    config_descriptor = config.descriptor(config_media_type)
    if embed_config:
        # `data` must hold the config itself; the extra field is unknown to the image spec and
        # checks that a registry stores and serves manifests with fields it does not know.
        config_descriptor["data"] = base64.b64encode(config.content).decode()
        config_descriptor["newUnspecifiedField"] = base64.b64encode(b"hello world").decode()
    document: dict[str, Any] = {"schemaVersion": 2, "mediaType": MANIFEST_V1}
    if artifact_type is not None:
        document["artifactType"] = artifact_type
    document["config"] = config_descriptor
    document["layers"] = [layer.descriptor() for layer in layers]
    if subject is not None:
        document["subject"] = subject.descriptor()
    if annotation is not None:
        document["annotations"] = {ANNOTATION_KEY: annotation}
    return Blob(encode(document), MANIFEST_V1)


def image_index(
    manifests: list[Blob],
    *,
    artifact_type: str | None = None,
    subject: Blob | None = None,
    annotation: str | None = None,
) -> Blob:
    document: dict[str, Any] = {"schemaVersion": 2, "mediaType": INDEX_V1}
    if artifact_type is not None:
        document["artifactType"] = artifact_type
    document["manifests"] = [manifest.descriptor() for manifest in manifests]
    if subject is not None:
        document["subject"] = subject.descriptor()
    if annotation is not None:
        document["annotations"] = {ANNOTATION_KEY: annotation}
    return Blob(encode(document), INDEX_V1)


@dataclass(frozen=True)
class Image:
    config: Blob
    layers: tuple[Blob, ...]
    manifest: Blob

    @property
    def blobs(self) -> tuple[Blob, ...]:
        return (self.config, *self.layers)


def random_image(layer: Blob, *, layers: bool = True) -> Image:
    config = random_config()
    own_layers = (layer,) if layers else ()
    manifest = image_manifest(config, list(own_layers), embed_config=True)
    return Image(config, own_layers, manifest)


@dataclass(frozen=True)
class ChunkedBlob:
    """A blob uploaded in two PATCHes; the first chunk is one byte longer than half."""

    blob: Blob

    @classmethod
    def of_size(cls, size: int) -> ChunkedBlob:
        return cls(random_blob(size))

    @property
    def split(self) -> int:
        return self.blob.size // 2 + 1

    @property
    def first(self) -> bytes:
        return self.blob.content[: self.split]

    @property
    def second(self) -> bytes:
        return self.blob.content[self.split :]

    @property
    def first_range(self) -> str:
        return f"0-{self.split - 1}"

    @property
    def second_range(self) -> str:
        return f"{self.split}-{self.blob.size - 1}"

    @property
    def full_range(self) -> str:
        return f"0-{self.blob.size - 1}"


@dataclass(frozen=True)
class Referrer:
    """A manifest or index whose `subject` is set, and what the referrers API must say of it."""

    name: str
    manifest: Blob
    artifact_type: str
    subject: Blob
    annotation: str | None


@dataclass(frozen=True)
class ReferrersSet:
    """The content-discovery referrers scenario of the Go suite.

    Five referrers point at `subject`: two of type A (one pushed before the subject exists), two
    of type B, and an index. A sixth points at `missing_subject`, which is never pushed.
    """

    subject: Image
    missing_subject: Image
    blob_a: Blob
    blob_b: Blob
    before_subject: tuple[Referrer, ...]
    after_subject: tuple[Referrer, ...]
    dangling: Referrer

    @property
    def of_subject(self) -> tuple[Referrer, ...]:
        return (*self.before_subject, *self.after_subject)

    @property
    def all(self) -> tuple[Referrer, ...]:
        return (*self.of_subject, self.dangling)


def _config_artifact(name: str, blob: Blob, artifact_type: str, subject: Blob) -> Referrer:
    manifest = image_manifest(
        blob, [EMPTY_JSON], config_media_type=artifact_type, subject=subject, annotation=name
    )
    return Referrer(name, manifest, artifact_type, subject, name)


def _layer_artifact(
    name: str, blob: Blob, artifact_type: str, subject: Blob, *, annotate: bool = True
) -> Referrer:
    layer = Blob(blob.content, artifact_type)
    annotation = name if annotate else None
    manifest = image_manifest(
        EMPTY_JSON, [layer], artifact_type=artifact_type, subject=subject, annotation=annotation
    )
    return Referrer(name, manifest, artifact_type, subject, annotation)


def referrers_set(layer: Blob) -> ReferrersSet:
    subject = random_image(layer)
    missing_subject = random_image(layer)
    blob_a = Blob(b"conformance artifact A " + secrets.token_bytes(8))
    blob_b = Blob(b"conformance artifact B " + secrets.token_bytes(8))
    s = subject.manifest
    config_a = _config_artifact("test config a", blob_a, ARTIFACT_TYPE_A, s)
    layer_a = _layer_artifact("test layer a", blob_a, ARTIFACT_TYPE_A, s)
    index = image_index(
        [config_a.manifest, layer_a.manifest],
        artifact_type=ARTIFACT_TYPE_INDEX,
        subject=s,
        annotation="test index",
    )
    return ReferrersSet(
        subject=subject,
        missing_subject=missing_subject,
        blob_a=blob_a,
        blob_b=blob_b,
        before_subject=(
            config_a,
            layer_a,
            Referrer("test index", index, ARTIFACT_TYPE_INDEX, s, "test index"),
        ),
        after_subject=(
            _config_artifact("test config b", blob_b, ARTIFACT_TYPE_B, s),
            _layer_artifact("test layer b", blob_b, ARTIFACT_TYPE_B, s),
        ),
        dangling=_layer_artifact(
            "dangling layer c", blob_b, ARTIFACT_TYPE_B, missing_subject.manifest, annotate=False
        ),
    )
