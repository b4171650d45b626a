"""The manifest half of the HTTP API: push, pull, tags, catalog, referrers, deletes, events."""

from __future__ import annotations

import json
from typing import Any

import pytest

from baepo.events import ImagePushed
from baepo.registry import Registry

from .conftest import AppClient
from .content import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Blob,
    Doc,
    error_codes,
    index,
    manifest,
    push_blob,
    push_image,
    push_manifest,
    random_config,
    random_layer,
    sha256,
)

REPO = "team/app"
EMPTY_CONFIG = Blob(b"{}", "application/vnd.oci.empty.v1+json")


def test_push_and_pull_by_tag_and_digest(client: AppClient) -> None:
    image = push_image(client, REPO, "v1")
    doc = image.manifest
    for reference in ("v1", doc.digest):
        r = client.get(f"/v2/{REPO}/manifests/{reference}")
        assert r.status_code == 200
        assert r.content == doc.data  # byte for byte, as pushed
        assert r.headers["content-type"] == OCI_MANIFEST
        assert r.headers["docker-content-digest"] == doc.digest
        h = client.head(f"/v2/{REPO}/manifests/{reference}")
        assert h.status_code == 200 and h.content == b""
        assert h.headers["content-length"] == str(len(doc.data))
        assert h.headers["content-type"] == OCI_MANIFEST
        assert h.headers["docker-content-digest"] == doc.digest


def test_put_response(client: AppClient) -> None:
    config, layer = random_config(), random_layer()
    push_blob(client, REPO, config)
    push_blob(client, REPO, layer)
    doc = manifest(config, [layer])
    r = push_manifest(client, REPO, "latest", doc)
    assert r.status_code == 201
    assert r.headers["location"] == f"/v2/{REPO}/manifests/{doc.digest}"
    assert r.headers["docker-content-digest"] == doc.digest
    assert "oci-subject" not in r.headers


def test_stored_type_is_served_whatever_the_accept_header(client: AppClient) -> None:
    image = push_image(client, REPO, "docker", media_type=DOCKER_MANIFEST)
    accept = ", ".join(
        [
            OCI_MANIFEST,
            OCI_INDEX,
            DOCKER_LIST,
            DOCKER_MANIFEST,
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
        ]
    )
    for headers in ({"Accept": accept}, {"Accept": OCI_MANIFEST}, {}):
        r = client.get(f"/v2/{REPO}/manifests/docker", headers=headers)
        assert r.status_code == 200
        assert r.headers["content-type"] == DOCKER_MANIFEST
        assert r.content == image.manifest.data


def test_push_by_digest_only(client: AppClient, registry: Registry) -> None:
    image = push_image(client, REPO)  # reference = its digest
    assert client.get(f"/v2/{REPO}/manifests/{image.manifest.digest}").status_code == 200
    assert registry.tags(REPO) == []


def test_push_by_wrong_digest(client: AppClient) -> None:
    config, layer = random_config(), random_layer()
    push_blob(client, REPO, config)
    push_blob(client, REPO, layer)
    doc = manifest(config, [layer])
    r = push_manifest(client, REPO, sha256(b"not this"), doc)
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"{not json", OCI_MANIFEST),
        (b'{"schemaVersion": 1}', OCI_MANIFEST),
        (json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST}).encode(), OCI_MANIFEST),
        (
            json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}).encode(),
            OCI_MANIFEST,
        ),
    ],
)
def test_malformed_manifest(client: AppClient, data: bytes, content_type: str) -> None:
    r = client.put(
        f"/v2/{REPO}/manifests/bad", content=data, headers={"Content-Type": content_type}
    )
    assert r.status_code == 400 and error_codes(r) == ["MANIFEST_INVALID"]


@pytest.mark.parametrize(
    "data",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"schemaVersion": 2, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ],
    ids=["array", "field"],
)
def test_deeply_nested_manifest_is_400_not_500(client: AppClient, data: bytes) -> None:
    r = client.put(
        f"/v2/{REPO}/manifests/deep", content=data, headers={"Content-Type": OCI_MANIFEST}
    )
    assert r.status_code == 400 and error_codes(r) == ["MANIFEST_INVALID"]


def test_manifest_with_a_bad_content_length(client: AppClient) -> None:
    image = push_image(client, REPO)
    headers = {"Content-Type": OCI_MANIFEST, "Content-Length": b"\xb2"}
    r = client.put(f"/v2/{REPO}/manifests/v1", content=image.manifest.data, headers=headers)
    assert r.status_code == 201  # a Content-Length we cannot read is not checked


@pytest.mark.parametrize("tag", ["vé1", ".hidden", "a" * 129])
def test_invalid_tag(client: AppClient, tag: str) -> None:
    """Baepo's one grammar (baepo.references): `services create --image` and the engine's pull
    refuse the same tags."""
    push_image(client, REPO, "v1")
    r = push_manifest(client, REPO, tag, index([]))
    assert r.status_code == 400 and error_codes(r) == ["TAG_INVALID"]
    assert "is not a valid tag" in r.json()["errors"][0]["message"]
    # Reading a tag that cannot exist is simply "unknown" (as the Go conformance suite expects).
    r = client.get(f"/v2/{REPO}/manifests/{tag}")
    assert r.status_code == 404 and error_codes(r) == ["MANIFEST_UNKNOWN"]
    assert client.delete(f"/v2/{REPO}/manifests/{tag}").status_code == 404
    assert client.get(f"/v2/{REPO}/tags/list").json()["tags"] == ["v1"]


def test_manifest_with_missing_blobs(client: AppClient) -> None:
    config, layer = random_config(), random_layer()
    push_blob(client, REPO, config)
    r = push_manifest(client, REPO, "v1", manifest(config, [layer]))
    assert r.status_code == 400
    assert error_codes(r) == ["MANIFEST_BLOB_UNKNOWN"]
    assert r.json()["errors"][0]["detail"] == [{"digest": layer.digest}]
    assert client.get(f"/v2/{REPO}/manifests/v1").status_code == 404


def test_a_descriptor_that_lies_about_a_size_is_refused(client: AppClient) -> None:
    config, layer = random_config(), random_layer(5)
    push_blob(client, REPO, config)
    push_blob(client, REPO, layer)
    body = json.loads(manifest(config, [layer]).data)
    body["layers"][0]["size"] = 999
    r = push_manifest(client, REPO, "v1", Doc(json.dumps(body).encode(), OCI_MANIFEST))
    assert r.status_code == 400 and error_codes(r) == ["MANIFEST_INVALID"]
    assert r.json()["errors"][0]["detail"] == [{"digest": layer.digest, "size": 999, "actual": 5}]
    assert client.get(f"/v2/{REPO}/manifests/v1").status_code == 404
    body["layers"][0]["size"] = 5
    body["layers"].append({**body["layers"][0], "size": 6})  # the same blob, two sizes
    r = push_manifest(client, REPO, "v1", Doc(json.dumps(body).encode(), OCI_MANIFEST))
    assert r.status_code == 400 and error_codes(r) == ["MANIFEST_INVALID"]


def test_an_index_must_give_its_children_their_real_size(client: AppClient) -> None:
    child = push_image(client, REPO, "amd64").manifest
    body = json.loads(index([child]).data)
    body["manifests"][0]["size"] += 1
    r = push_manifest(client, REPO, "multi", Doc(json.dumps(body).encode(), OCI_INDEX))
    assert r.status_code == 400 and error_codes(r) == ["MANIFEST_INVALID"]


def test_manifest_blobs_must_be_in_this_repository(client: AppClient) -> None:
    config, layer = random_config(), random_layer()
    push_blob(client, "team/elsewhere", config)
    push_blob(client, "team/elsewhere", layer)
    r = push_manifest(client, REPO, "v1", manifest(config, [layer]))
    assert r.status_code == 400 and error_codes(r) == ["MANIFEST_BLOB_UNKNOWN"]


def test_index_with_missing_child(client: AppClient) -> None:
    present = push_image(client, REPO, "amd64")
    missing = Doc(b'{"schemaVersion":2}', OCI_MANIFEST)
    r = push_manifest(client, REPO, "multi", index([present.manifest, missing]))
    assert r.status_code == 400 and error_codes(r) == ["MANIFEST_BLOB_UNKNOWN"]
    assert r.json()["errors"][0]["detail"] == [{"digest": missing.digest}]


@pytest.mark.parametrize(
    ("child_type", "index_type"), [(OCI_MANIFEST, OCI_INDEX), (DOCKER_MANIFEST, DOCKER_LIST)]
)
def test_index_and_manifest_list(client: AppClient, child_type: str, index_type: str) -> None:
    a = push_image(client, REPO, media_type=child_type)
    b = push_image(client, REPO, media_type=child_type)
    doc = index([a.manifest, b.manifest], index_type)
    r = push_manifest(client, REPO, "multi", doc)
    assert r.status_code == 201, r.text
    got = client.get(f"/v2/{REPO}/manifests/multi")
    assert got.headers["content-type"] == index_type and got.content == doc.data
    nested = index([doc], OCI_INDEX)
    assert push_manifest(client, REPO, "nested", nested).status_code == 201


def test_manifest_too_large(client: AppClient) -> None:
    big = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [],
            "annotations": {"pad": "x" * (4 * 1024 * 1024)},
        }
    ).encode()
    r = client.put(f"/v2/{REPO}/manifests/big", content=big, headers={"Content-Type": OCI_INDEX})
    assert r.status_code == 413 and error_codes(r) == ["SIZE_INVALID"]


def test_unknown_manifest(client: AppClient) -> None:
    push_image(client, REPO, "v1")
    for reference in ("nope", sha256(b"nope")):
        r = client.get(f"/v2/{REPO}/manifests/{reference}")
        assert r.status_code == 404 and error_codes(r) == ["MANIFEST_UNKNOWN"]
        assert client.head(f"/v2/{REPO}/manifests/{reference}").status_code == 404
    r = client.get("/v2/team/never/manifests/latest")
    assert r.status_code == 404 and error_codes(r) == ["NAME_UNKNOWN"]


# -- tags and catalog ------------------------------------------------------------------------


def test_tags_list_and_pagination(client: AppClient) -> None:
    image = push_image(client, REPO, "b")
    for tag in ("a", "C", "c", "a1"):
        assert push_manifest(client, REPO, tag, image.manifest).status_code == 201
    r = client.get(f"/v2/{REPO}/tags/list")
    assert r.json() == {"name": REPO, "tags": ["C", "a", "a1", "b", "c"]}
    assert "link" not in r.headers
    first = client.get(f"/v2/{REPO}/tags/list", params={"n": 2})
    assert first.json()["tags"] == ["C", "a"]
    assert first.headers["link"] == f'</v2/{REPO}/tags/list?n=2&last=a>; rel="next"'
    url = first.headers["link"].split(">")[0][1:]
    second = client.get(url)
    assert second.json()["tags"] == ["a1", "b"]
    third = client.get(second.headers["link"].split(">")[0][1:])
    assert third.json()["tags"] == ["c"] and "link" not in third.headers
    zero = client.get(f"/v2/{REPO}/tags/list", params={"n": 0})
    assert zero.json()["tags"] == [] and "link" not in zero.headers
    assert client.get(f"/v2/{REPO}/tags/list", params={"n": "x"}).status_code == 400


@pytest.mark.parametrize("n", ["\u00b2", "\u0661", "9" * 5000, "-1"])
def test_bad_page_size_is_400_not_500(client: AppClient, n: str) -> None:
    push_image(client, REPO, "v1")
    for path in (f"/v2/{REPO}/tags/list", "/v2/_catalog"):
        r = client.get(path, params={"n": n})
        assert r.status_code == 400 and error_codes(r) == ["PAGINATION_NUMBER_INVALID"]


def test_tags_of_unknown_repository(client: AppClient) -> None:
    r = client.get("/v2/team/ghost/tags/list")
    assert r.status_code == 404 and error_codes(r) == ["NAME_UNKNOWN"]


def test_catalog(client: AppClient) -> None:
    for repo in ("b/x", "a", "team/app/api"):
        push_image(client, repo, "v1")
    r = client.get("/v2/_catalog")
    assert r.json() == {"repositories": ["a", "b/x", "team/app/api"]}
    page = client.get("/v2/_catalog", params={"n": 1, "last": "a"})
    assert page.json() == {"repositories": ["b/x"]}
    assert page.headers["link"] == '</v2/_catalog?n=1&last=b%2Fx>; rel="next"'


# -- deletes ---------------------------------------------------------------------------------


def test_delete_tag_keeps_the_manifest(client: AppClient) -> None:
    image = push_image(client, REPO, "v1")
    push_manifest(client, REPO, "v2", image.manifest)
    assert client.delete(f"/v2/{REPO}/manifests/v1").status_code == 202
    assert client.get(f"/v2/{REPO}/manifests/v1").status_code == 404
    assert client.get(f"/v2/{REPO}/manifests/v2").status_code == 200
    assert client.get(f"/v2/{REPO}/manifests/{image.manifest.digest}").status_code == 200
    assert client.get(f"/v2/{REPO}/tags/list").json()["tags"] == ["v2"]
    assert client.delete(f"/v2/{REPO}/manifests/v1").status_code == 404


def test_delete_manifest_by_digest(client: AppClient) -> None:
    image = push_image(client, REPO, "v1")
    digest = image.manifest.digest
    assert client.delete(f"/v2/{REPO}/manifests/{digest}").status_code == 202
    r = client.get(f"/v2/{REPO}/manifests/{digest}")
    assert r.status_code == 404 and error_codes(r) == ["MANIFEST_UNKNOWN"]
    assert client.get(f"/v2/{REPO}/manifests/v1").status_code == 404
    assert client.get(f"/v2/{REPO}/tags/list").json()["tags"] == []
    assert client.delete(f"/v2/{REPO}/manifests/{digest}").status_code == 404


# -- referrers -------------------------------------------------------------------------------


def _artifact(
    client: AppClient, subject: Doc, artifact_type: str | None, annotations: dict[str, str]
) -> Doc:
    push_blob(client, REPO, EMPTY_CONFIG)
    layer = random_layer(50)
    push_blob(client, REPO, layer)
    config = EMPTY_CONFIG if artifact_type else Blob(b"{}", "application/vnd.example.config")
    if not artifact_type:
        push_blob(client, REPO, config)
    extra: dict[str, Any] = {"subject": subject.descriptor(), "annotations": annotations}
    if artifact_type:
        extra["artifactType"] = artifact_type
    doc = manifest(config, [layer], **extra)
    r = push_manifest(client, REPO, doc.digest, doc)
    assert r.status_code == 201, r.text
    assert r.headers["oci-subject"] == subject.digest
    return doc


def test_referrers(client: AppClient) -> None:
    image = push_image(client, REPO, "v1")
    subject = image.manifest
    empty = client.get(f"/v2/{REPO}/referrers/{subject.digest}")
    assert empty.status_code == 200
    assert empty.headers["content-type"] == OCI_INDEX
    assert empty.json() == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    sig = _artifact(client, subject, "application/vnd.example.signature", {"k": "sig"})
    sbom = _artifact(client, subject, None, {"k": "sbom"})
    listed = client.get(f"/v2/{REPO}/referrers/{subject.digest}").json()["manifests"]
    by_digest = {d["digest"]: d for d in listed}
    assert by_digest[sig.digest] == {
        "mediaType": OCI_MANIFEST,
        "digest": sig.digest,
        "size": len(sig.data),
        "artifactType": "application/vnd.example.signature",
        "annotations": {"k": "sig"},
    }
    assert by_digest[sbom.digest]["artifactType"] == "application/vnd.example.config"
    filtered = client.get(
        f"/v2/{REPO}/referrers/{subject.digest}",
        params={"artifactType": "application/vnd.example.signature"},
    )
    assert filtered.headers["oci-filters-applied"] == "artifactType"
    assert [d["digest"] for d in filtered.json()["manifests"]] == [sig.digest]
    assert "oci-filters-applied" not in client.get(f"/v2/{REPO}/referrers/{subject.digest}").headers


def test_referrer_may_come_before_its_subject(client: AppClient) -> None:
    future = Doc(b'{"future": true}', OCI_MANIFEST)
    doc = _artifact(client, future, "application/vnd.example.early", {})
    listed = client.get(f"/v2/{REPO}/referrers/{future.digest}").json()["manifests"]
    assert [d["digest"] for d in listed] == [doc.digest]


def test_index_referrer_without_artifact_type(client: AppClient) -> None:
    image = push_image(client, REPO, "v1")
    doc = index([], subject=image.manifest.descriptor(), annotations={"a": "b"})
    r = push_manifest(client, REPO, "idx", doc)
    assert r.headers["oci-subject"] == image.manifest.digest
    listed = client.get(f"/v2/{REPO}/referrers/{image.manifest.digest}").json()["manifests"]
    assert listed == [
        {
            "mediaType": OCI_INDEX,
            "digest": doc.digest,
            "size": len(doc.data),
            "annotations": {"a": "b"},
        }
    ]


def test_referrers_never_404_but_400_on_bad_digest(client: AppClient) -> None:
    r = client.get(f"/v2/team/unknown/referrers/{sha256(b'x')}")
    assert r.status_code == 200 and r.json()["manifests"] == []
    r = client.get(f"/v2/{REPO}/referrers/sha256:zzz")
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]


# -- events ----------------------------------------------------------------------------------


def test_pushes_are_recorded_and_published(
    client: AppClient, registry: Registry, pushed: list[ImagePushed]
) -> None:
    image = push_image(client, REPO, "v1")
    by_digest = push_image(client, REPO)
    assert [(e.repository, e.tag, e.digest, e.actor) for e in pushed] == [
        (REPO, "v1", image.manifest.digest, "tester"),
        (REPO, None, by_digest.manifest.digest, "tester"),
    ]
    assert pushed[0].media_type == OCI_MANIFEST
    events = registry.push_events(REPO)
    assert [(e.tag, e.digest) for e in events] == [
        (None, by_digest.manifest.digest),
        ("v1", image.manifest.digest),
    ]
    assert events[0].actor == "tester" and events[0].at == pushed[1].at
