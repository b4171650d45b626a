"""`baepo.backup`: an archive of a data directory, taken while it is written to, restored into
an empty directory. (The whole path with a running Baepo, a pushed image and a service is
tests/e2e/test_backup_restore.py.)"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tarfile
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from baepo.backup import MANIFEST, BackupError, Summary, backup, restore
from baepo.config import Config
from baepo.registry.tables import BlobRecord
from baepo.schema import schema
from baepo.storage import (
    BlobNotFound,
    BlobReader,
    FilesystemDriver,
    S3Driver,
    S3Settings,
    StorageDriver,
)
from baepo.store import Database, revision_of
from baepo.store.migrations import head_revision
from baepo.store.transfers import transfer
from tests.databases import PostgresDatabases
from tests.s3server import ACCESS_KEY, SECRET_KEY, S3Server

WAIT_S = 30.0


class DataDir:
    """A data directory as Baepo lays it out: the database (its own SQLite, or the one at
    `database_url`), blobs (its own, or `driver`'s), keys, CA, a git remote."""

    def __init__(
        self,
        path: Path,
        database_url: str | None = None,
        driver: StorageDriver | None = None,
    ) -> None:
        self.path = path
        path.mkdir(mode=0o700, exist_ok=True)
        self.config = Config(data_dir=path, database=database_url)
        self.database_url = database_url
        self.db = Database(self.config.database_url)
        self.db.migrate(schema())
        self.driver = driver or FilesystemDriver(self.config.blob_dir)

    def backup(self, archive: Path, driver: StorageDriver | None = None) -> Summary:
        return backup(self.path, archive, driver, database_url=self.database_url)

    def push_blob(self, data: bytes) -> str:
        """As the registry stores one: the bytes first, then the row."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self.driver.put(digest, data)
        now = datetime.now(UTC)
        with self.db.engine.begin() as conn:
            conn.execute(
                sa.insert(BlobRecord).values(
                    digest=digest, size=len(data), created_at=now, touched_at=now
                )
            )
        return digest

    def collect(self, digest: str) -> None:
        """As the garbage collector removes one: the row first, then the bytes."""
        with self.db.engine.begin() as conn:
            conn.execute(sa.delete(BlobRecord).where(BlobRecord.digest == digest))
        self.driver.delete(digest)

    def digests(self) -> set[str]:
        with self.db.engine.connect() as conn:
            return set(conn.execute(sa.select(BlobRecord.digest)).scalars())


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=60
    ).stdout


@pytest.fixture(params=["sqlite", "postgresql"])
def source(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DataDir]:
    """A data directory with its database on SQLite, then on PostgreSQL."""
    if request.param == "sqlite":
        yield filled(DataDir(tmp_path / "data"), tmp_path)
        return
    postgres: PostgresDatabases = request.getfixturevalue("postgres_databases")
    with postgres.database() as url:
        data = filled(DataDir(tmp_path / "data", url), tmp_path)
        yield data
        data.db.dispose()


@pytest.fixture
def sqlite_source(tmp_path: Path) -> DataDir:
    return filled(DataDir(tmp_path / "data"), tmp_path)


def filled(data: DataDir, tmp_path: Path) -> DataDir:
    for name, content in {"secrets/token.key": "k" * 32, "ca/ca.key": "ca key"}.items():
        (data.path / name).parent.mkdir(parents=True, exist_ok=True)
        (data.path / name).write_text(content)
    (data.path / "router").mkdir()
    (data.path / "router" / "routes.json").write_text("{}")  # rendered again at start
    work = tmp_path / "work"
    work.mkdir()
    git("init", "-q", "-b", "main", cwd=work)
    (work / "app.py").write_text("print('hi')\n")
    git("add", ".", cwd=work)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first", cwd=work)
    git("clone", "-q", "--bare", str(work), str(data.path / "git" / "app.git"), cwd=tmp_path)
    data.push_blob(b"layer one")
    data.push_blob(b"config")
    return data


def test_a_restored_directory_holds_what_the_source_held(source: DataDir, tmp_path: Path) -> None:
    archive = tmp_path / "backup.tar.gz"
    made = source.backup(archive)
    assert made.blobs == 2 and made.schema_revision == head_revision()
    assert archive.stat().st_mode & 0o777 == 0o600  # it holds every key
    summary = restore(archive, tmp_path / "restored")
    assert summary.members == made.members
    restored = DataDir(tmp_path / "restored")
    assert restored.digests() == source.digests()
    for digest in source.digests():
        assert restored.driver.get(digest) == source.driver.get(digest)
    assert (restored.path / "secrets" / "token.key").read_text() == "k" * 32
    assert (restored.path / "ca" / "ca.key").read_text() == "ca key"
    assert not (restored.path / "router" / "routes.json").exists()
    repo = restored.path / "git" / "app.git"
    assert git("log", "--format=%s", "main", cwd=repo) == "first\n"
    git("fsck", "--strict", cwd=repo)
    assert (restored.path / "git" / "app.git" / "hooks").is_dir()
    assert restored.path.stat().st_mode & 0o777 == 0o700


def test_restore_refuses_a_directory_that_is_not_empty(
    sqlite_source: DataDir, tmp_path: Path
) -> None:
    sqlite_source.backup(tmp_path / "backup.tar")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "baepo.db").write_text("someone's state")
    with pytest.raises(BackupError, match="not an empty directory"):
        restore(tmp_path / "backup.tar", tmp_path / "busy")
    assert (tmp_path / "busy" / "baepo.db").read_text() == "someone's state"


def test_restore_refuses_the_backup_of_a_newer_baepo(
    sqlite_source: DataDir, tmp_path: Path
) -> None:
    with sqlite_source.db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'f00dfeedf00d'"))
    sqlite_source.backup(tmp_path / "backup.tar")
    with pytest.raises(BackupError, match=r"newer Baepo .* schema f00dfeedf00d"):
        restore(tmp_path / "backup.tar", tmp_path / "restored")
    assert not (tmp_path / "restored").exists()


def test_a_damaged_archive_is_refused_and_nothing_is_left(
    sqlite_source: DataDir, tmp_path: Path
) -> None:
    archive = tmp_path / "backup.tar"
    sqlite_source.backup(archive)
    with tarfile.open(archive) as tar:
        layer = next(m for m in tar.getmembers() if m.name.startswith("blobs/"))
    with archive.open("r+b") as raw:
        raw.seek(layer.offset_data)
        first = raw.read(1)
        raw.seek(layer.offset_data)
        raw.write(bytes([first[0] ^ 0xFF]))
    with pytest.raises(BackupError, match="does not match its manifest entry"):
        restore(archive, tmp_path / "restored")
    assert list((tmp_path / "restored").iterdir()) == []


class Interleaved(FilesystemDriver):
    """The source's blob store, with a hook run at the first blob the backup opens: what
    happens between its copy of the database and its blobs."""

    def __init__(self, root: Path, at_first_open: Callable[[str], None]) -> None:
        super().__init__(root)
        self.hook = at_first_open
        self.opened = 0

    def open(self, digest: str, offset: int = 0) -> BlobReader:
        self.opened += 1
        if self.opened == 1:
            self.hook(digest)
        return super().open(digest, offset)


def test_pushes_during_a_backup_are_in_it_whole_or_not_at_all(
    source: DataDir, tmp_path: Path
) -> None:
    """A writer pushes blobs (bytes, then row) all through the backup; the backup waits at
    its first blob until the writer has pushed 20 more. The restored database is sound and
    every blob it lists has its bytes."""
    stop = threading.Event()
    pushed: list[str] = []

    def writer() -> None:
        for n in range(5000):
            if stop.is_set():
                return
            pushed.append(source.push_blob(f"blob {n}".encode()))

    def wait_for_more_pushes(digest: str) -> None:
        target = len(pushed) + 20
        for _ in range(int(WAIT_S / 0.01)):
            if len(pushed) >= target:
                return
            stop.wait(0.01)
        raise AssertionError("the writer made no progress")

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        driver = Interleaved(source.config.blob_dir, wait_for_more_pushes)
        made = source.backup(tmp_path / "backup.tar", driver)
    finally:
        stop.set()
        thread.join(WAIT_S)
    restore(tmp_path / "backup.tar", tmp_path / "restored")
    restored = DataDir(tmp_path / "restored")
    listed = restored.digests()
    assert len(listed) == made.blobs >= 2
    assert len(pushed) >= made.blobs - 2 + 19  # 20 pushes after the copy (one maybe in it)
    for digest in listed:
        assert restored.driver.stat(digest) is not None
    assert revision_of(restored.path / "baepo.db") == head_revision()
    with restored.db.engine.connect() as conn:
        assert conn.execute(sa.text("PRAGMA integrity_check")).scalar() == "ok"


def test_a_blob_collected_after_the_copy_of_the_database_is_left_out(
    source: DataDir, tmp_path: Path
) -> None:
    """The garbage collector removes a blob between the backup's copy of the database and
    its opening of that blob: the database is copied again, and the blob is in neither the
    restored database nor the restored store."""
    victim = source.push_blob(b"untagged, then collected")
    driver = Interleaved(source.config.blob_dir, lambda _: source.collect(victim))
    made = source.backup(tmp_path / "backup.tar", driver)
    with tarfile.open(tmp_path / "backup.tar") as tar:
        manifest = json.load(tar.extractfile(MANIFEST))  # type: ignore[arg-type]  # a file
    assert f"blobs/sha256/{victim[7:]}" not in manifest["members"]
    restore(tmp_path / "backup.tar", tmp_path / "restored")
    restored = DataDir(tmp_path / "restored")
    assert restored.digests() == source.digests() and victim not in restored.digests()
    assert made.blobs == 2
    with pytest.raises(BlobNotFound):
        restored.driver.open(victim)


def test_an_installation_on_postgresql_and_s3_is_backed_up_restored_and_moved_back(
    tmp_path: Path, postgres_databases: PostgresDatabases, s3_server: S3Server
) -> None:
    """Several processes' state: rows in PostgreSQL, blobs in a bucket. The archive holds
    them (the rows as a SQLite file); restored, the blobs go into another bucket, and
    `migrate-state`'s copy puts the rows into an empty PostgreSQL database again."""

    def bucket_driver() -> S3Driver:
        settings = S3Settings(
            s3_server.bucket(), s3_server.endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY
        )
        return S3Driver.connect(settings)

    with postgres_databases.database() as url, postgres_databases.database(migrated=False) as new:
        source = filled(DataDir(tmp_path / "data", url, bucket_driver()), tmp_path)
        try:
            made = source.backup(tmp_path / "backup.tar.gz", source.driver)
            assert made.blobs == 2 and made.schema_revision == head_revision()
            target = bucket_driver()
            restored_at = tmp_path / "restored"
            summary = restore(tmp_path / "backup.tar.gz", restored_at, target)
            assert summary.members == made.members
            restored = DataDir(restored_at, driver=target)  # SQLite, blobs in the new bucket
            assert restored.digests() == source.digests()
            for digest in source.digests():
                assert target.get(digest) == source.driver.get(digest)
            assert (restored_at / "secrets" / "token.key").read_text() == "k" * 32
            moved = transfer(restored.config.database_url, new, schema())
            assert moved.rows >= 2
            back = Database(new)
            try:
                with back.engine.connect() as conn:
                    rows = set(conn.execute(sa.select(BlobRecord.digest)).scalars())
                assert rows == source.digests()
            finally:
                back.dispose()
        finally:
            source.db.dispose()
