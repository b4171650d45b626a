"""Online garbage collection: what is swept, what is kept, and the grace period."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from baepo.clock import FakeClock
from baepo.registry import Registry
from baepo.storage import FilesystemDriver

from .conftest import AppClient
from .content import Blob, index, push_blob, push_image, push_manifest, random_layer, sha256

REPO = "team/app"
HOURS = 3600.0


def test_unreferenced_old_blob_is_swept(
    client: AppClient, registry: Registry, clock: FakeClock
) -> None:
    image = push_image(client, REPO, "v1")
    orphan = random_layer(4096)
    push_blob(client, REPO, orphan)
    clock.advance(2 * HOURS)
    report = registry.gc()
    assert report.blobs == [orphan.digest]
    assert report.blob_bytes == 4096 and report.bytes_freed >= 4096
    assert client.get(f"/v2/{REPO}/blobs/{orphan.digest}").status_code == 404
    assert registry.driver.stat(orphan.digest) is None
    for blob in (image.config, *image.layers):
        assert client.get(f"/v2/{REPO}/blobs/{blob.digest}").content == blob.data
    assert client.get(f"/v2/{REPO}/manifests/v1").status_code == 200
    assert registry.gc().blobs == []  # nothing left to do


def test_grace_period_protects_young_blobs(
    client: AppClient, registry: Registry, clock: FakeClock
) -> None:
    orphan = random_layer()
    push_blob(client, REPO, orphan)
    clock.advance(30 * 60)
    assert registry.gc().blobs == []
    assert registry.gc(grace_seconds=10 * 60).blobs == [orphan.digest]


def test_pushing_a_blob_again_renews_its_grace(
    client: AppClient, registry: Registry, clock: FakeClock
) -> None:
    orphan = random_layer()
    push_blob(client, REPO, orphan)
    clock.advance(2 * HOURS)
    push_blob(client, "team/other", orphan)  # a new push of the same bytes
    assert registry.gc().blobs == []
    assert client.get(f"/v2/team/other/blobs/{orphan.digest}").status_code == 200


def test_dry_run_changes_nothing(client: AppClient, registry: Registry, clock: FakeClock) -> None:
    orphan = random_layer()
    push_blob(client, REPO, orphan)
    start = client.post(f"/v2/{REPO}/blobs/uploads/")
    client.patch(start.headers["location"], content=b"abandoned")
    clock.advance(2 * HOURS)
    dry = registry.gc(dry_run=True)
    assert dry.dry_run and dry.blobs == [orphan.digest] and len(dry.uploads) == 1
    assert client.get(f"/v2/{REPO}/blobs/{orphan.digest}").status_code == 200
    assert client.get(start.headers["location"]).status_code == 204
    real = registry.gc()
    assert (real.blobs, real.uploads) == (dry.blobs, dry.uploads)


def test_deleted_manifest_frees_its_blobs_but_not_shared_ones(
    client: AppClient, registry: Registry, clock: FakeClock
) -> None:
    a = push_image(client, REPO, "a")
    b = push_image(client, REPO, "b")
    # b's manifest also uses a's layer
    from .content import manifest

    shared = manifest(b.config, [*b.layers, *a.layers])
    assert push_manifest(client, REPO, "shared", shared).status_code == 201
    client.delete(f"/v2/{REPO}/manifests/{a.manifest.digest}")
    clock.advance(2 * HOURS)
    freed = set(registry.gc().blobs)
    assert freed == {a.manifest.digest, a.config.digest}
    assert client.get(f"/v2/{REPO}/blobs/{a.layers[0].digest}").status_code == 200


def test_untagged_manifests_are_kept_by_default(
    client: AppClient, registry: Registry, clock: FakeClock
) -> None:
    by_digest = push_image(client, REPO)
    clock.advance(2 * HOURS)
    assert registry.gc().blobs == []
    r = client.get(f"/v2/{REPO}/manifests/{by_digest.manifest.digest}")
    assert r.status_code == 200


def test_delete_untagged_keeps_what_a_tag_reaches(
    client: AppClient, registry: Registry, clock: FakeClock
) -> None:
    child = push_image(client, REPO)
    tagged = index([child.manifest])
    assert push_manifest(client, REPO, "multi", tagged).status_code == 201
    signature = push_image(client, REPO, subject=child.manifest.descriptor())
    loose = push_image(client, REPO)
    clock.advance(2 * HOURS)
    report = registry.gc(delete_untagged=True)
    assert report.manifests == [(REPO, loose.manifest.digest)]
    assert set(report.blobs) == {loose.manifest.digest, loose.config.digest, loose.layers[0].digest}
    for kept in (child, signature):
        assert client.get(f"/v2/{REPO}/manifests/{kept.manifest.digest}").status_code == 200
    assert client.get(f"/v2/{REPO}/manifests/{loose.manifest.digest}").status_code == 404


def test_abandoned_uploads_go_active_ones_stay(
    client: AppClient, registry: Registry, clock: FakeClock
) -> None:
    old = client.post(f"/v2/{REPO}/blobs/uploads/")
    client.patch(old.headers["location"], content=b"x" * 100)
    busy = client.post(f"/v2/{REPO}/blobs/uploads/")
    busy_id = busy.headers["docker-upload-uuid"]
    clock.advance(2 * HOURS)
    fresh = client.post(f"/v2/{REPO}/blobs/uploads/")
    registry.uploads._busy.add(busy_id)  # a request is streaming into it right now
    try:
        report = registry.gc()
    finally:
        registry.uploads._busy.discard(busy_id)
    assert report.uploads == [old.headers["docker-upload-uuid"]]
    assert report.upload_bytes == 100
    assert client.get(old.headers["location"]).status_code == 404
    assert client.get(busy.headers["location"]).status_code == 204
    # `fresh` was created by the (fake) clock's now: its row is young.
    assert client.get(fresh.headers["location"]).status_code == 204


def test_bytes_without_a_row_and_stray_temp_files(
    tmp_path: object, registry: Registry, clock: FakeClock
) -> None:
    """What a crash can leave: a committed blob whose row was never written, a temp file."""
    assert isinstance(registry.driver, FilesystemDriver)
    data = os.urandom(64)
    registry.driver.put(sha256(data), data)
    stray = registry.driver.root / "tmp" / "put-crashed"
    stray.write_bytes(b"1234")
    young = registry.gc()
    assert (young.blobs, young.temp_files) == ([], 0)  # young leftovers are left alone
    past = (datetime.now(UTC) - timedelta(hours=3)).timestamp()
    os.utime(stray, (past, past))
    clock.advance(2 * HOURS)
    report = registry.gc()
    assert report.blobs == [sha256(data)]
    assert (report.temp_files, report.temp_bytes) == (1, 4)
    assert not stray.exists()


def test_report_as_json(client: AppClient, registry: Registry, clock: FakeClock) -> None:
    orphan = Blob(b"orphan")
    push_blob(client, REPO, orphan)
    clock.advance(2 * HOURS)
    doc = registry.gc(dry_run=True).as_json()
    assert doc["dry_run"] is True
    assert doc["blobs"] == [orphan.digest]
    assert doc["bytes_freed"] == doc["blob_bytes"] == 6
