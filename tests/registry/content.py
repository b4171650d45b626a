"""Test content: blobs, image manifests and indexes, and pushing them through the HTTP API."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


class Client(Protocol):
    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response: ...
    def get(self, url: str, **kwargs: Any) -> httpx.Response: ...
    def head(self, url: str, **kwargs: Any) -> httpx.Response: ...
    def post(self, url: str, **kwargs: Any) -> httpx.Response: ...
    def put(self, url: str, **kwargs: Any) -> httpx.Response: ...
    def patch(self, url: str, **kwargs: Any) -> httpx.Response: ...
    def delete(self, url: str, **kwargs: Any) -> httpx.Response: ...


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Blob:
    data: bytes
    media_type: str = OCI_LAYER

    @property
    def digest(self) -> str:
        return sha256(self.data)

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data)}


@dataclass(frozen=True)
class Doc:
    """A manifest or index document as bytes, with the media type it is pushed with."""

    data: bytes
    media_type: str

    @property
    def digest(self) -> str:
        return sha256(self.data)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": len(self.data),
            **extra,
        }


def random_layer(size: int = 1000) -> Blob:
    return Blob(os.urandom(size))


def random_config(media_type: str = OCI_CONFIG) -> Blob:
    doc = {"architecture": "amd64", "os": "linux", "author": os.urandom(8).hex()}
    return Blob(json.dumps(doc).encode(), media_type)


def manifest(config: Blob, layers: list[Blob], media_type: str = OCI_MANIFEST, **extra: Any) -> Doc:
    body: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": config.descriptor(),
        "layers": [layer.descriptor() for layer in layers],
        **extra,
    }
    return Doc(json.dumps(body, indent=2).encode(), media_type)


def index(children: list[Doc], media_type: str = OCI_INDEX, **extra: Any) -> Doc:
    body = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [c.descriptor() for c in children],
        **extra,
    }
    return Doc(json.dumps(body).encode(), media_type)


def push_blob(client: Client, repo: str, blob: Blob) -> httpx.Response:
    start = client.post(f"/v2/{repo}/blobs/uploads/")
    assert start.status_code == 202, start.text
    done = client.put(
        start.headers["location"],
        params={"digest": blob.digest},
        content=blob.data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert done.status_code == 201, done.text
    return done


def push_manifest(client: Client, repo: str, reference: str, doc: Doc) -> httpx.Response:
    return client.put(
        f"/v2/{repo}/manifests/{reference}",
        content=doc.data,
        headers={"Content-Type": doc.media_type},
    )


@dataclass(frozen=True)
class Image:
    config: Blob
    layers: list[Blob]
    manifest: Doc


def push_image(
    client: Client,
    repo: str,
    tag: str | None = None,
    *,
    media_type: str = OCI_MANIFEST,
    **extra: Any,
) -> Image:
    docker = media_type == DOCKER_MANIFEST
    config = random_config(DOCKER_CONFIG if docker else OCI_CONFIG)
    layers = [Blob(random_layer().data, DOCKER_LAYER if docker else OCI_LAYER)]
    for blob in (config, *layers):
        push_blob(client, repo, blob)
    doc = manifest(config, layers, media_type, **extra)
    r = push_manifest(client, repo, tag or doc.digest, doc)
    assert r.status_code == 201, r.text
    return Image(config, layers, doc)


def error_codes(response: httpx.Response) -> list[str]:
    return [e["code"] for e in response.json()["errors"]]
