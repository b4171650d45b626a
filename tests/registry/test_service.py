"""`Registry` as plain Python: what the API room and the CLI call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from baepo.clock import FakeClock
from baepo.events import EventBus, ImagePushed
from baepo.registry import (
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    Registry,
    RegistryUnavailable,
    create_app,
)
from baepo.storage import MemoryDriver
from baepo.store import Database

from .conftest import AllowAll, AppClient
from .content import OCI_MANIFEST, index, manifest, push_blob, push_image, random_config
from .content import random_layer as layer


def test_repositories_and_public_flag(client: AppClient, registry: Registry) -> None:
    assert registry.repositories() == []
    assert registry.is_public("team/app") is False
    push_image(client, "team/app", "v1")
    info = registry.create_repository("a/new", public=True)
    assert (info.name, info.public) == ("a/new", True)
    assert registry.create_repository("a/new").public is True  # idempotent
    assert [(r.name, r.tag_count) for r in registry.repositories()] == [
        ("a/new", 0),
        ("team/app", 1),
    ]
    registry.set_public("team/app", True)
    assert registry.is_public("team/app") and registry.repository("team/app").public
    registry.set_public("team/app", False)
    assert registry.is_public("team/app") is False
    with pytest.raises(NameInvalid):
        registry.create_repository("Bad Name")
    with pytest.raises(NameUnknown):
        registry.repository("team/none")


def test_tags_resolve_and_deletes(client: AppClient, registry: Registry) -> None:
    image = push_image(client, "team/app", "v1")
    push_image(client, "team/app", "v2")
    assert registry.tags("team/app") == ["v1", "v2"]
    assert registry.resolve("team/app", "v1") == image.manifest.digest
    assert registry.resolve("team/app", image.manifest.digest) == image.manifest.digest
    registry.delete_tag("team/app", "v1")
    assert registry.tags("team/app") == ["v2"]
    with pytest.raises(ManifestUnknown):
        registry.resolve("team/app", "v1")
    with pytest.raises(ManifestUnknown):
        registry.delete_tag("team/app", "v1")
    registry.delete_manifest("team/app", image.manifest.digest)
    with pytest.raises(ManifestUnknown):
        registry.manifest("team/app", image.manifest.digest)
    with pytest.raises(NameUnknown):
        registry.tags("team/nothing")


def test_images_list_tags_per_manifest(
    client: AppClient, registry: Registry, clock: FakeClock
) -> None:
    first = push_image(client, "team/app", "v1")
    clock.advance(10)
    second = push_image(client, "team/app", "v2")
    client.put(
        "/v2/team/app/manifests/latest",
        content=second.manifest.data,
        headers={"Content-Type": OCI_MANIFEST},
    )
    images = registry.images("team/app")
    assert [(i.digest, i.tags) for i in images] == [
        (second.manifest.digest, ("latest", "v2")),
        (first.manifest.digest, ("v1",)),
    ]
    assert images[0].media_type == OCI_MANIFEST and images[0].pushed_by == "tester"
    assert images[0].size == len(second.manifest.data)


def test_delete_repository(client: AppClient, registry: Registry) -> None:
    push_image(client, "team/app", "v1")
    upload = client.post("/v2/team/app/blobs/uploads/")
    registry.delete_repository("team/app")
    assert registry.repositories() == []
    assert client.get("/v2/team/app/tags/list").status_code == 404
    assert client.get(upload.headers["location"]).status_code == 404
    assert list(registry.context.driver.uploads()) == []
    with pytest.raises(NameUnknown):
        registry.delete_repository("team/app")
    push_image(client, "team/app", "v1")  # the name can be used again
    assert registry.tags("team/app") == ["v1"]


def test_put_manifest_from_python(
    client: AppClient, registry: Registry, pushed: list[ImagePushed]
) -> None:
    config, blob = random_config(), layer()
    push_blob(client, "team/app", config)
    push_blob(client, "team/app", blob)
    doc = manifest(config, [blob])
    result = registry.put_manifest("team/app", "v9", doc.data, OCI_MANIFEST, actor="ci")
    assert (result.digest, result.tag, result.subject) == (doc.digest, "v9", None)
    assert pushed[-1].actor == "ci" and pushed[-1].tag == "v9"
    stored = registry.manifest("team/app", "v9")
    assert registry.manifest_bytes(stored) == doc.data


def test_memory_driver_serves_the_whole_api(db: Database, make_client: Any) -> None:
    clock = FakeClock()
    registry = Registry(db=db, driver=MemoryDriver(clock), bus=EventBus(), clock=clock)
    client = make_client(create_app(registry, AllowAll()))
    image = push_image(client, "mem/app", "v1")
    assert client.get("/v2/mem/app/manifests/v1").content == image.manifest.data
    big = layer(3 * 1024 * 1024)
    push_blob(client, "mem/app", big)
    assert client.get(f"/v2/mem/app/blobs/{big.digest}").content == big.data
    assert push_blob(client, "mem/app", big).status_code == 201
    assert (
        client.put(
            "/v2/mem/app/manifests/i",
            content=index([image.manifest]).data,
            headers={"Content-Type": index([]).media_type},
        ).status_code
        == 201
    )


def test_database_failure_is_unavailable_not_a_traceback(tmp_path: Path, make_client: Any) -> None:
    broken = Database(f"sqlite:///{tmp_path}/missing/dir/state.db")
    registry = Registry(db=broken, driver=MemoryDriver(), bus=EventBus(), clock=FakeClock())
    with pytest.raises(RegistryUnavailable):
        registry.repositories()
    client = make_client(create_app(registry, AllowAll()))
    r = client.get("/v2/team/app/tags/list")
    assert r.status_code == 503
    assert r.json()["errors"][0]["code"] == "UNAVAILABLE"
    assert "Traceback" not in r.text
