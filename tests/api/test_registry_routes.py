"""`/api/v1/registry`: the repository list is one query, and no route reads the database on
the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from baepo.registry import TagMutability
from tests.api.rights_world import RightsWorld, basic, build
from tests.registry.content import (
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    Blob,
    Doc,
    index,
    manifest,
    random_config,
    random_layer,
)

LIST = "/api/v1/registry/repositories"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[RightsWorld]:
    for world in build(tmp_path):
        for user in ("admin", "alice", "bob"):
            world.headers[user] = basic(user)
        yield world


def tag(world: RightsWorld, name: str, *tags: str) -> None:
    config = random_config()
    registry = world.registry
    registry.record_blob(name, registry.context.driver.put(config.digest, config.data))
    for t in tags:
        registry.put_manifest(name, t, manifest(config, []).data, OCI_MANIFEST)


def statements(world: RightsWorld, who: str, path: str) -> tuple[Any, int]:
    """The JSON answer of a GET, and how many SQL statements it ran."""
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(args[2])

    sa.event.listen(world.db.engine, "before_cursor_execute", count)
    try:
        r = world.request(who, "GET", path)
    finally:
        sa.event.remove(world.db.engine, "before_cursor_execute", count)
    assert r.status_code == 200, r.text
    return r.json(), len(seen)


def test_the_repository_list_is_one_query_however_many_repositories(world: RightsWorld) -> None:
    tag(world, "alice/app", "v1", "v2")
    world.registry.create_repository("team/open", public=True)
    world.registry.create_repository("team/closed")
    statements(world, "bob", LIST)  # the first sign-in of a caller costs more than the next
    found, few = statements(world, "bob", LIST)
    assert [(r["name"], r["public"], r["tags"]) for r in found] == [("team/open", True, 0)]
    found, _ = statements(world, "alice", LIST)
    assert [(r["name"], r["tags"]) for r in found] == [("alice/app", 2), ("team/open", 0)]
    for n in range(8):
        world.registry.create_repository(f"team/more{n}", public=n % 2 == 0)
    found, many = statements(world, "bob", LIST)
    assert len(found) == 5
    assert many == few


def test_no_public_flag_lookup_on_the_event_loop(
    world: RightsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    tag(world, "alice/app", "v1")
    world.registry.set_public("alice/app", True)
    real = world.registry.is_public
    on_loop: list[str] = []

    def is_public(name: str) -> bool:
        try:
            asyncio.get_running_loop()
            on_loop.append(name)
        except RuntimeError:
            pass
        return real(name)

    monkeypatch.setattr(world.registry, "is_public", is_public)
    r = world.request("bob", "GET", "/api/v1/registry/repositories/alice/app/tags")
    assert r.status_code == 200 and [t["tag"] for t in r.json()] == ["v1"]
    assert world.request("bob", "GET", "/api/v1/registry/repositories/alice/app/events").json()
    world.registry.set_public("alice/app", False)
    r = world.request("bob", "GET", "/api/v1/registry/repositories/alice/app/tags")
    assert r.status_code == 404
    assert on_loop == []


def push(world: RightsWorld, name: str, doc: Doc, reference: str, *blobs: Blob) -> None:
    registry = world.registry
    for blob in blobs:
        registry.record_blob(name, registry.context.driver.put(blob.digest, blob.data))
    registry.put_manifest(name, reference, doc.data, doc.media_type, actor="alice")


def test_an_image_with_its_layers_tags_and_referrers(world: RightsWorld) -> None:
    config, layer = random_config(), random_layer(1234)
    image = manifest(config, [layer])
    push(world, "alice/app", image, "v1", config, layer)
    push(world, "alice/app", image, "latest")
    signature_config = random_config("application/vnd.example.signature")
    signature = manifest(signature_config, [], subject=image.descriptor())
    push(world, "alice/app", signature, signature.digest, signature_config)
    world.registry.set_tag_mutability("alice/app", TagMutability(True))

    [repository] = world.request("alice", "GET", LIST).json()
    assert repository["immutable_tags"] is True
    found = world.request("alice", "GET", f"{LIST}/alice/app/manifests/v1").json()
    assert found["digest"] == image.digest and found["tags"] == ["latest", "v1"]
    assert found["pushed_by"] == "alice" and found["size"] == len(image.data)
    assert found["config"]["digest"] == config.digest
    assert [(d["digest"], d["size"], d["media_type"]) for d in found["layers"]] == [
        (layer.digest, 1234, OCI_LAYER)
    ]
    assert [r["digest"] for r in found["referrers"]] == [signature.digest]
    assert found["referrers"][0]["artifact_type"] == "application/vnd.example.signature"
    by_digest = world.request("alice", "GET", f"{LIST}/alice/app/manifests/{signature.digest}")
    assert by_digest.json()["subject"]["digest"] == image.digest

    images = world.request("alice", "GET", f"{LIST}/alice/app/images").json()
    assert {i["digest"]: i["tags"] for i in images} == {
        image.digest: ["latest", "v1"],
        signature.digest: [],
    }
    sizes = {i["digest"]: i["size"] for i in images}
    assert sizes[image.digest] == len(config.data) + 1234
    assert world.request("bob", "GET", f"{LIST}/alice/app/manifests/v1").status_code == 404
    assert world.request("bob", "GET", f"{LIST}/alice/app/images").status_code == 404
    missing = world.request("alice", "GET", f"{LIST}/alice/app/manifests/v9")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "MANIFEST_UNKNOWN"


def test_an_index_lists_its_images(world: RightsWorld) -> None:
    config, layer = random_config(), random_layer()
    child = manifest(config, [layer])
    push(world, "alice/multi", child, child.digest, config, layer)
    parent = index([child])
    push(world, "alice/multi", parent, "v1")
    found = world.request("alice", "GET", f"{LIST}/alice/multi/manifests/v1").json()
    assert found["media_type"] == OCI_INDEX and found["config"] is None
    assert [m["digest"] for m in found["manifests"]] == [child.digest]
