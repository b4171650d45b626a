"""Manifest validation (a pure function), table by table."""

from __future__ import annotations

import json
from typing import Any

import pytest

from baepo.registry.errors import ManifestInvalid
from baepo.registry.manifests import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    MAX_MANIFEST_BYTES,
    OCI_INDEX,
    OCI_MANIFEST,
    parse_manifest,
)

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64
CONFIG = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": D1, "size": 10}
LAYER = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": D2, "size": 20}


def doc(**fields: Any) -> bytes:
    return json.dumps({"schemaVersion": 2, **fields}).encode()


def image(**extra: Any) -> bytes:
    return doc(mediaType=OCI_MANIFEST, config=CONFIG, layers=[LAYER], **extra)


@pytest.mark.parametrize(
    ("data", "content_type", "media_type"),
    [
        (image(), OCI_MANIFEST, OCI_MANIFEST),
        (image(), None, OCI_MANIFEST),
        (image(), "application/octet-stream", OCI_MANIFEST),
        (image(), f"{OCI_MANIFEST}; charset=utf-8", OCI_MANIFEST),
        (doc(config=CONFIG, layers=[LAYER]), OCI_MANIFEST, OCI_MANIFEST),  # no mediaType field
        (doc(config=CONFIG, layers=[]), None, OCI_MANIFEST),  # by shape
        (
            doc(mediaType=DOCKER_MANIFEST, config=CONFIG, layers=[LAYER]),
            DOCKER_MANIFEST,
            DOCKER_MANIFEST,
        ),
        (doc(mediaType=OCI_INDEX, manifests=[]), OCI_INDEX, OCI_INDEX),
        (doc(manifests=[]), OCI_INDEX, OCI_INDEX),
        (doc(manifests=[]), None, OCI_INDEX),
        (doc(mediaType=DOCKER_LIST, manifests=[]), DOCKER_LIST, DOCKER_LIST),
    ],
)
def test_accepted(data: bytes, content_type: str | None, media_type: str) -> None:
    assert parse_manifest(data, content_type).media_type == media_type


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"", OCI_MANIFEST),
        (b"not json", OCI_MANIFEST),
        (b"\xff\xfe", OCI_MANIFEST),
        (b"[]", OCI_MANIFEST),
        (b'"string"', OCI_MANIFEST),
        (b"[" * 100_000 + b"]" * 100_000, OCI_MANIFEST),  # deeper than the parser recurses
        (b'{"schemaVersion": 2, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", OCI_MANIFEST),
        (doc(mediaType=OCI_MANIFEST, layers=[LAYER]), OCI_MANIFEST),  # no config
        (doc(mediaType=OCI_MANIFEST, config=CONFIG), OCI_MANIFEST),  # no layers
        (doc(mediaType=OCI_MANIFEST, config=CONFIG, layers={}), OCI_MANIFEST),
        (
            json.dumps({"mediaType": OCI_MANIFEST, "config": CONFIG, "layers": []}).encode(),
            OCI_MANIFEST,
        ),  # no schemaVersion
        (json.dumps({"schemaVersion": 1, "config": CONFIG, "layers": []}).encode(), None),
        (json.dumps({"schemaVersion": True, "config": CONFIG, "layers": []}).encode(), None),
        (json.dumps({"schemaVersion": "2", "config": CONFIG, "layers": []}).encode(), None),
        (image(), OCI_INDEX),  # Content-Type contradicts mediaType
        (image(), DOCKER_MANIFEST),
        (
            doc(mediaType="application/vnd.docker.distribution.manifest.v1+prettyjws", fsLayers=[]),
            None,
        ),
        (doc(mediaType="text/plain", config=CONFIG, layers=[]), None),
        (doc(mediaType=7, config=CONFIG, layers=[]), None),
        (doc(config=CONFIG, layers=[]), DOCKER_MANIFEST),  # docker needs its mediaType
        (doc(foo="bar"), None),  # neither a manifest nor an index
        (doc(mediaType=OCI_INDEX), OCI_INDEX),  # no manifests
        (doc(mediaType=OCI_INDEX, manifests="x"), OCI_INDEX),
        (image(annotations={"a": 1}), OCI_MANIFEST),
        (image(annotations=["a"]), OCI_MANIFEST),
        (image(artifactType=5), OCI_MANIFEST),
        (image(subject="sha256:x"), OCI_MANIFEST),
    ],
)
def test_rejected(data: bytes, content_type: str | None) -> None:
    with pytest.raises(ManifestInvalid):
        parse_manifest(data, content_type)


@pytest.mark.parametrize(
    "descriptor",
    [
        {"digest": D1, "size": 1},  # no mediaType
        {"mediaType": "", "digest": D1, "size": 1},
        {"mediaType": "x", "size": 1},  # no digest
        {"mediaType": "x", "digest": "sha256:short", "size": 1},
        {"mediaType": "x", "digest": "md5:" + "a" * 32, "size": 1},
        {"mediaType": "x", "digest": D1},  # no size
        {"mediaType": "x", "digest": D1, "size": -1},
        {"mediaType": "x", "digest": D1, "size": 1.5},
        {"mediaType": "x", "digest": D1, "size": "1"},
        {"mediaType": "x", "digest": D1, "size": 1, "urls": "http://x"},
        {"mediaType": "x", "digest": D1, "size": 1, "urls": [1]},
        "not an object",
    ],
)
def test_bad_descriptors(descriptor: Any) -> None:
    with pytest.raises(ManifestInvalid):
        parse_manifest(doc(mediaType=OCI_MANIFEST, config=descriptor, layers=[]), None)
    with pytest.raises(ManifestInvalid):
        parse_manifest(doc(mediaType=OCI_INDEX, manifests=[descriptor]), None)


def test_too_large() -> None:
    padding = "x" * MAX_MANIFEST_BYTES
    with pytest.raises(ManifestInvalid):
        parse_manifest(image(annotations={"pad": padding}), OCI_MANIFEST)


def test_what_must_exist() -> None:
    foreign = {**LAYER, "digest": D3, "urls": ["https://example.com/layer"]}
    m = parse_manifest(doc(config=CONFIG, layers=[LAYER, LAYER, foreign]), OCI_MANIFEST)
    assert m.blobs == (D1, D2)  # deduplicated; a foreign layer names its own URL
    assert m.children == ()
    index = parse_manifest(
        doc(manifests=[{"mediaType": OCI_MANIFEST, "digest": D1, "size": 3}] * 2), OCI_INDEX
    )
    assert index.is_index and index.children == (D1,) and index.blobs == ()


@pytest.mark.parametrize(
    ("data", "artifact_type"),
    [
        (image(), CONFIG["mediaType"]),
        (image(artifactType="application/vnd.example.sbom"), "application/vnd.example.sbom"),
        (image(artifactType=""), CONFIG["mediaType"]),
        (doc(mediaType=OCI_INDEX, manifests=[]), None),
        (doc(mediaType=OCI_INDEX, manifests=[], artifactType="x/y"), "x/y"),
    ],
)
def test_referrer_artifact_type(data: bytes, artifact_type: str | None) -> None:
    assert parse_manifest(data, None).referrer_artifact_type == artifact_type


def test_subject_and_annotations() -> None:
    subject = {"mediaType": OCI_MANIFEST, "digest": D3, "size": 5}
    m = parse_manifest(image(subject=subject, annotations={"k": "v"}), OCI_MANIFEST)
    assert m.subject is not None and m.subject.digest == D3
    assert m.annotations == {"k": "v"}
    # `subject` is not a reference that must exist: referrers may come first.
    assert D3 not in m.blobs and D3 not in m.children
