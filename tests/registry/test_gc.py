"""Online garbage collection: what is swept, what is kept, and the grace period."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from baepo.clock import FakeClock
from baepo.events import EventBus
from baepo.registry import Registry, RegistryUnavailable, create_app
from baepo.registry import tables as t
from baepo.registry.records import BlobGuard
from baepo.storage import BlobInfo, FilesystemDriver
from baepo.store import Database
from tests.databases import PostgresDatabases

from .conftest import AllowAll, AppClient
from .content import (
    OCI_MANIFEST,
    Blob,
    index,
    manifest,
    push_blob,
    push_image,
    push_manifest,
    random_config,
    random_layer,
    sha256,
)

EVERY_DRIVER = True  # each test that stores blobs runs on the filesystem and on S3
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
    assert registry.context.driver.stat(orphan.digest) is None
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
    with registry.context.sessions.claim(busy_id):  # a request is streaming into it right now
        report = registry.gc()
    assert report.uploads == [old.headers["docker-upload-uuid"]]
    assert report.upload_bytes == 100
    assert client.get(old.headers["location"]).status_code == 404
    assert client.get(busy.headers["location"]).status_code == 204
    # `fresh` was created by the (fake) clock's now: its row is young.
    assert client.get(fresh.headers["location"]).status_code == 204


@pytest.mark.filesystem_only  # files on disk
def test_bytes_without_a_row_and_stray_temp_files(
    tmp_path: object, registry: Registry, clock: FakeClock
) -> None:
    """What a crash can leave: a committed blob whose row was never written, a temp file."""
    assert isinstance(registry.context.driver, FilesystemDriver)
    data = os.urandom(64)
    registry.context.driver.put(sha256(data), data)
    stray = registry.context.driver.root / "tmp" / "put-crashed"
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


# -- gc racing a push: the collector runs at a chosen point inside another operation ----------


class WatchedGuard:
    """Watches the registry's blob guard (the one its context holds), telling when a sweep
    had to wait for a commit."""

    def __init__(self, guard: BlobGuard) -> None:
        self.sweep_waited = threading.Event()
        real = guard.exclusive

        @contextmanager
        def exclusive(digest: str) -> Iterator[bool]:
            with guard._cond:
                if guard._readers or guard._writer:
                    self.sweep_waited.set()
            with real(digest) as alone:
                yield alone

        guard.exclusive = exclusive  # type: ignore[method-assign]


class GcInBetween:
    """Start `registry.gc()` in another thread and go on once it has finished or is held
    back by the blob guard; `join()` waits for it to end."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.guard = WatchedGuard(registry.context.guard)
        self.swept: list[str] = []
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        assert self._thread is None, "one gc per test"
        self._thread = threading.Thread(target=self._run)
        self._thread.start()
        deadline = threading.Event()
        timer = threading.Timer(10, deadline.set)
        timer.start()
        try:
            while self._thread.is_alive() and not self.guard.sweep_waited.wait(0.005):
                assert not deadline.is_set(), "gc neither finished nor waited for the guard"
        finally:
            timer.cancel()

    def _run(self) -> None:
        self.swept = self.registry.gc().blobs

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join(10)
            assert not self._thread.is_alive()


def test_gc_during_a_manifest_re_push_keeps_its_bytes(registry: Registry, clock: FakeClock) -> None:
    """Re-pushing a deleted manifest whose old, unreferenced blob the collector is sweeping."""
    config = random_config()
    registry.record_blob("r", registry.context.driver.put(config.digest, config.data))
    registry.put_manifest("r", "keep", manifest(config, []).data, OCI_MANIFEST)
    doc = manifest(config, [], annotations={"n": "again"})
    registry.put_manifest("r", "v1", doc.data, OCI_MANIFEST)
    registry.delete_manifest("r", doc.digest)  # its blob row stays, unreferenced
    clock.advance(2 * HOURS)
    gc = GcInBetween(registry)
    real_put = registry.context.driver.put

    def put_then_gc(digest: str, data: bytes) -> BlobInfo:
        info = real_put(digest, data)
        gc.start()  # between the bytes and the rows
        return info

    registry.context.driver.put = put_then_gc  # type: ignore[method-assign]
    registry.put_manifest("r", "v1", doc.data, OCI_MANIFEST)
    gc.join()
    assert gc.guard.sweep_waited.is_set()
    assert doc.digest not in gc.swept
    found = registry.manifest("r", "v1")
    assert registry.manifest_bytes(found) == doc.data
    assert registry.gc().blobs == []


@contextmanager
def gc_before_database_call(registry: Registry, gc: GcInBetween, call: int) -> Iterator[None]:
    """Run the collector just before this thread's `call`-th database access (from 1)."""
    records = registry.context.records
    me = threading.get_ident()
    seen = 0

    def hooked(real: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            nonlocal seen
            if threading.get_ident() == me:
                seen += 1
                if seen == call:
                    gc.start()
            return real(*args, **kwargs)

        return run

    names = ("conn", "read", "write")
    for name in names:
        setattr(records, name, hooked(getattr(records, name)))
    try:
        yield
    finally:
        for name in names:
            delattr(records, name)


@pytest.mark.parametrize("call", [1, 2, 3])
def test_gc_during_a_cross_repository_mount(
    client: AppClient, registry: Registry, clock: FakeClock, call: int
) -> None:
    """Wherever the collector runs during a mount, the mount either falls back to an upload
    or leaves a blob whose bytes are there."""
    layer = random_layer(11)
    push_blob(client, "src", layer)  # linked, unreferenced: the collector wants it
    clock.advance(2 * HOURS)
    gc = GcInBetween(registry)
    with gc_before_database_call(registry, gc, call):
        mounted = registry.mount_blob("dst", layer.digest, "src")
    gc.join()
    registry.gc()
    if mounted is None:  # swept first: the client uploads the blob instead
        assert client.head(f"/v2/dst/blobs/{layer.digest}").status_code == 404
        assert registry.context.driver.stat(layer.digest) is None
    else:
        assert mounted.size == 11
        assert client.get(f"/v2/dst/blobs/{layer.digest}").content == layer.data


def test_mount_of_a_blob_the_source_does_not_link(client: AppClient, registry: Registry) -> None:
    layer = random_layer()
    push_blob(client, "other", layer)
    assert registry.mount_blob("dst", layer.digest, "src") is None
    assert registry.mount_blob("dst", layer.digest, "nowhere") is None
    assert client.head(f"/v2/dst/blobs/{layer.digest}").status_code == 404
    mounted = registry.mount_blob("dst", layer.digest, "other")
    assert mounted is not None and mounted.size == len(layer.data)
    assert client.get(f"/v2/dst/blobs/{layer.digest}").content == layer.data


@pytest.mark.filesystem_only  # files on disk
def test_upload_sessions_expire_on_their_own_files_and_rows_together(
    client: AppClient, registry: Registry, clock: FakeClock
) -> None:
    old = client.post(f"/v2/{REPO}/blobs/uploads/")
    client.patch(old.headers["location"], content=b"x" * 100)
    clock.advance(25 * HOURS)
    young = client.post(f"/v2/{REPO}/blobs/uploads/")
    stale_file = upload_dir(registry) / old.headers["docker-upload-uuid"]
    os.utime(stale_file, (time.time() - 25 * 3600,) * 2)
    report = registry.expire_uploads(24 * 3600)
    assert report.uploads == [old.headers["docker-upload-uuid"]]
    assert not stale_file.exists()
    assert client.get(old.headers["location"]).status_code == 404
    assert client.get(young.headers["location"]).status_code == 204
    with registry.context.records.read() as s:
        rows = s.scalars(sa.select(t.UploadRecord.id)).all()
    assert rows == [young.headers["docker-upload-uuid"]]


@pytest.mark.filesystem_only  # files on disk
def test_cancelling_an_upload_frees_its_bytes_even_when_the_database_cannot_write(
    client: AppClient, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = client.post(f"/v2/{REPO}/blobs/uploads/")
    client.patch(started.headers["location"], content=b"x" * 100)
    path = upload_dir(registry) / started.headers["docker-upload-uuid"]
    assert path.exists()

    def full(*args: object, **kwargs: object) -> bool:
        raise RegistryUnavailable("database error: database or disk is full")

    monkeypatch.setattr(registry.context.records, "write", full)
    assert client.delete(started.headers["location"]).status_code == 503
    assert not path.exists(), "the bytes must go even when the row cannot"
    monkeypatch.undo()
    assert client.get(started.headers["location"]).status_code == 404


def upload_dir(registry: Registry) -> Path:
    driver = registry.context.driver
    assert isinstance(driver, FilesystemDriver)
    return driver.root / "uploads"


# -- gc on another process sharing the PostgreSQL database -----------------------------------


@pytest.fixture
def two_processes(
    postgres_databases: PostgresDatabases, tmp_path: Path, bus: EventBus, clock: FakeClock
) -> Iterator[tuple[Registry, Registry]]:
    """Two registries as two processes run them: one PostgreSQL database and one blob store,
    each with its own connections, driver and guard."""
    with postgres_databases.database() as url:
        dbs = [Database(url), Database(url)]
        try:
            here, there = (
                Registry(
                    db=db,
                    driver=FilesystemDriver(tmp_path / "blobs"),
                    bus=bus,
                    clock=clock,
                    process=name,
                )
                for db, name in zip(dbs, ("here", "there"), strict=True)
            )
            yield here, there
        finally:
            for db in dbs:
                db.dispose()


def test_a_gc_on_another_process_leaves_a_blob_this_one_is_committing(
    two_processes: tuple[Registry, Registry], make_client: Any, clock: FakeClock
) -> None:
    """The other process's collector runs between this one's bytes and its row: the bytes,
    old by their time and in no row yet, are the blob of a commit under way."""
    here, there = two_processes
    client = make_client(create_app(here, AllowAll()))
    layer = random_layer(64)
    clock.advance(2 * HOURS)  # bytes written now look old to the collector
    commit = here.context.driver.commit_upload
    swept: list[str] = []

    def commit_then_gc(upload_id: str, digest: str) -> BlobInfo:
        info = commit(upload_id, digest)
        swept.extend(there.gc().blobs)
        return info

    here.context.driver.commit_upload = commit_then_gc  # type: ignore[method-assign]
    push_blob(client, REPO, layer)
    assert swept == []
    assert client.get(f"/v2/{REPO}/blobs/{layer.digest}").content == layer.data
    assert there.gc().blobs == []  # its row is fresh now


def test_a_commit_waits_for_another_process_sweeping_its_blob(
    two_processes: tuple[Registry, Registry], make_client: Any, clock: FakeClock
) -> None:
    """An old, unreferenced blob pushed again while the other process sweeps it (its row
    deleted, its bytes not yet): the commit waits, then stores the bytes and the row."""
    here, there = two_processes
    client = make_client(create_app(here, AllowAll()))
    layer = random_layer(64)
    push_blob(client, REPO, layer)
    clock.advance(2 * HOURS)
    across = here.context.guard._across
    assert across is not None
    refused = threading.Event()
    take = across._take

    def watched_take(function: str, key: int) -> int | None:
        generation = take(function, key)
        if generation is None:
            refused.set()
        return generation

    across._take = watched_take  # type: ignore[method-assign]
    pushed: list[int] = []
    pusher = threading.Thread(
        target=lambda: pushed.append(push_blob(client, REPO, layer).status_code)
    )
    delete = there.context.driver.delete

    def push_then_delete(digest: str) -> bool:
        if digest == layer.digest and pusher.ident is None:
            pusher.start()
            assert refused.wait(10), "the commit did not wait for the sweep"
        return delete(digest)

    there.context.driver.delete = push_then_delete  # type: ignore[method-assign]
    assert there.gc().blobs == [layer.digest]
    pusher.join(30)
    assert pushed == [201]
    assert client.get(f"/v2/{REPO}/blobs/{layer.digest}").content == layer.data
