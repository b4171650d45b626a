"""`baepo backup` and `baepo restore`: a data directory as one tar file, taken while Baepo serves.

What goes in (tar members, in this order; `manifest.json` last):

    data/secrets/…        the keys: token signing, secret box (also the installation's identity
                          on the engine), the engine's and the router activator's tokens
    data/ca/…             the local CA
    data/acme/…           the ACME account, when there is one
    data/router/certs/…   the router's certificates (ACME ones are slow to get again); the rest
                          of router/ is rendered again from the database at the first start
    data/git/…            the services' git remotes
    data/logs/…           what gone instances wrote
    data/pipelines/{logs,sources}/…   pipeline runs' logs and the sources kept for re-runs
    blobs/<alg>/<hex>     every blob the database lists, read through the storage driver
                          (the data directory's, or an S3 bucket's)
    baepo.db              the state database: SQLite's copied with its online backup API;
                          PostgreSQL's rows copied into a SQLite file, as of one snapshot
    manifest.json         format, Baepo's version, the schema revision, and each member's
                          sha256, size and mode

Not kept: uploads in progress, temp files, pipeline workspaces, HAProxy's rendered files.

Why the data directory is read directly, not through the API: a backup holds every key (the
CA's, the token signing key), which should never cross HTTP, not even to an admin token; it
works whether Baepo runs or not (before an upgrade, after a crash); and a consistent copy needs
nothing from the server:

- The database is copied in one read transaction (`baepo.store.snapshot`; on PostgreSQL one
  REPEATABLE READ transaction, `store/transfers.py`): one commit's state.
- Blobs are content-addressed and immutable. Their bytes land before their row is written,
  and the garbage collector deletes the row before the bytes, so every blob the copy lists
  existed when the copy was taken. A blob opened is read whole even if it is deleted
  meanwhile. One deleted between the copy and its opening (a tag removed and `registry gc
  --grace 0` run after the copy) makes the copy stale: the database is copied again and the
  blobs it lists that are not in the archive yet are added; the blobs of an earlier copy that
  the last one no longer lists stay out of the manifest, and restore skips them.
- Other files are written whole by rename (keys, certificates) or only appended (logs). Git
  writes objects before the refs that name them and repacks before it prunes: refs are copied
  first, then loose objects, then packs; a file that vanished is skipped and the trees are
  walked again (up to `COPY_ROUNDS` times) for files that appeared, such as a new pack.

Restore writes into an empty data directory only, checks every member against the manifest
as it streams, and refuses an archive whose schema revision this Baepo does not know (a newer
Baepo's). An older revision is migrated by the next `baepo up`, as at any upgrade.

An installation on PostgreSQL is backed up the same way, its rows in the archive's SQLite
file: the archive is one format whatever the database. Restored, it is an installation on
SQLite; `baepo migrate-state --to <url>` puts it back into an empty PostgreSQL database. Blobs
go through the `StorageDriver` interface, so the archive does not depend on the layout of the
blob store, and a restore may write them to another one (a bucket).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

import sqlalchemy as sa

from baepo import __version__
from baepo.config import Config
from baepo.registry.tables import BlobRecord
from baepo.storage import BlobNotFound, FilesystemDriver, StorageDriver, StorageError
from baepo.store import StoreError, known_revision, revision_of, snapshot

FORMAT = 1
MANIFEST = "manifest.json"
DATABASE = "baepo.db"
TREES = (
    "secrets",
    "ca",
    "acme",
    "router/certs",
    "git",
    "logs",
    "pipelines/logs",
    "pipelines/sources",
)
SNAPSHOT_ATTEMPTS = 5
COPY_ROUNDS = 3
CHUNK = 1 << 20


class BackupError(Exception):
    """A backup or a restore that cannot be done (shown as one line)."""


@dataclass
class Summary:
    """What an archive holds."""

    schema_revision: str | None
    files: int = 0
    blobs: int = 0
    bytes: int = 0
    members: dict[str, dict[str, Any]] = field(default_factory=dict)

    def count(self, name: str, member: dict[str, Any]) -> None:
        self.bytes += member["size"]
        if name.startswith("blobs/"):
            self.blobs += 1
        elif name.startswith("data/") and not member.get("directory"):
            self.files += 1


def backup(
    data_dir: Path,
    archive: Path,
    driver: StorageDriver | None = None,
    database_url: str | None = None,
) -> Summary:
    """Write a consistent archive of `data_dir` to `archive` (`.gz` compresses it).

    `driver` is the blob store (default: the data directory's), `database_url` the state
    database (default: the data directory's, or `$BAEPO_DATABASE_URL`); written to
    `<archive>.part` first, so a backup cut short never takes the archive's name."""
    config = Config(data_dir=data_dir, database=database_url)
    copy_database = _database_copier(config.database_url)
    driver = driver or FilesystemDriver(config.blob_dir)
    part = archive.with_name(archive.name + ".part")
    compressed = archive.suffix in (".gz", ".tgz")
    try:
        with (
            tempfile.TemporaryDirectory(prefix="baepo-backup-") as scratch,
            # 0600 from its first byte: it holds every key of the installation
            os.fdopen(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as raw,
            tarfile.open(fileobj=raw, mode="w:gz")
            if compressed
            else tarfile.open(fileobj=raw, mode="w") as tar,
        ):
            writer = _Writer(tar)
            _add_trees(writer, data_dir)
            copy = Path(scratch) / DATABASE
            blobs = _add_database_and_blobs(writer, copy_database, copy, driver)
            summary = writer.finish(copy, blobs)
        with part.open("rb") as written:
            os.fsync(written.fileno())  # on disk before it takes the archive's name
        part.replace(archive)
    except (OSError, StoreError, StorageError, tarfile.TarError) as exc:
        part.unlink(missing_ok=True)
        raise BackupError(f"cannot back up {data_dir}: {exc}") from exc
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return summary


def _database_copier(url: str) -> Callable[[Path], None]:
    """What copies the state database at `url` into a new SQLite file, as of one commit."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database:
            raise BackupError("the database is an in-memory SQLite: there is nothing to back up")
        source = Path(parsed.database)
        return lambda copy: snapshot(source, copy)

    def copy_rows(copy: Path) -> None:
        from baepo.schema import schema  # every room's tables
        from baepo.store.transfers import transfer

        transfer(url, f"sqlite:///{copy}", schema())

    return copy_rows


class _Writer:
    """The tar being written, and the manifest of what went into it."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar
        self.members: dict[str, dict[str, Any]] = {}

    def add(self, name: str, stream: _Readable, size: int, mode: int) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = size, mode, int(time.time())
        hashing = _Hashing(stream)
        self.tar.addfile(info, hashing)
        self.members[name] = {"sha256": hashing.hasher.hexdigest(), "size": size, "mode": mode}

    def add_directory(self, name: str, mode: int) -> None:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode, int(time.time())
        self.tar.addfile(info)
        self.members[name] = {"directory": True, "size": 0, "mode": mode}

    def finish(self, database: Path, blobs: set[str]) -> Summary:
        with database.open("rb") as stream:
            self.add(DATABASE, stream, database.stat().st_size, 0o600)
        summary = Summary(revision_of(database))
        for name, member in self.members.items():
            if name.startswith("blobs/") and _digest_of(name) not in blobs:
                continue  # listed by an earlier copy of the database only
            summary.members[name] = member
            summary.count(name, member)
        manifest = json.dumps(
            {
                "format": FORMAT,
                "baepo_version": __version__,
                "schema_revision": summary.schema_revision,
                "created_at": datetime.now(UTC).isoformat(),
                "members": summary.members,
            },
            indent=1,
            sort_keys=True,
        ).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mode, info.mtime = len(manifest), 0o600, int(time.time())
        self.tar.addfile(info, io.BytesIO(manifest))
        return summary


def _add_trees(writer: _Writer, data_dir: Path) -> None:
    copied: set[str] = set()
    for _ in range(COPY_ROUNDS):
        new = [rel for rel in _tree_files(data_dir) if rel not in copied]
        if not new:
            return
        for rel in new:
            copied.add(rel)
            _add_entry(writer, data_dir, rel)


def _tree_files(data_dir: Path) -> list[str]:
    """The directories and files to keep, as paths relative to `data_dir`, git's refs before
    its objects and loose objects before packs. (Directories too: git needs its empty ones.)"""
    found: list[str] = []
    for tree in TREES:
        top = data_dir / tree
        if not top.is_dir():
            continue
        found.append(tree)
        for root, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if not _transient(d)]
            for name in dirs + [f for f in files if not _transient(f)]:
                found.append(str(Path(root, name).relative_to(data_dir)))
    return sorted(found, key=lambda rel: ("/objects/" in rel, "/objects/pack/" in rel, rel))


def _transient(name: str) -> bool:
    """A file or directory being written: a temp file before its rename, a git lock or a
    push's quarantine."""
    return name.startswith(".") or name.endswith(".lock") or name.startswith(("tmp_", "incoming-"))


def _add_entry(writer: _Writer, data_dir: Path, rel: str) -> None:
    path = data_dir / rel
    try:
        if path.is_dir():
            writer.add_directory(f"data/{rel}", stat.S_IMODE(path.stat().st_mode) & 0o700)
            return
        stream = path.open("rb")
    except FileNotFoundError:
        return  # gone since the walk (a git object packed, a log rotated)
    with stream:
        st = os.fstat(stream.fileno())
        if stat.S_ISREG(st.st_mode):
            writer.add(f"data/{rel}", stream, st.st_size, stat.S_IMODE(st.st_mode) & 0o700)


def _add_database_and_blobs(
    writer: _Writer, copy_database: Callable[[Path], None], copy: Path, driver: StorageDriver
) -> set[str]:
    """Copy the database, then every blob it lists; again while a blob it lists was deleted
    before it could be opened. Returns the blobs the last copy lists."""
    written: set[str] = set()
    for _ in range(SNAPSHOT_ATTEMPTS):
        copy.unlink(missing_ok=True)
        copy_database(copy)
        listed = _blobs_listed(copy)
        gone = [d for d in sorted(listed - written) if not _add_blob(writer, driver, d)]
        written |= listed - set(gone)
        if not gone:
            return listed
    raise BackupError(
        f"blobs were deleted faster than they could be copied {SNAPSHOT_ATTEMPTS} times "
        "(a garbage collection with no grace period running?): try again"
    )


def _blobs_listed(database: Path) -> set[str]:
    engine = sa.create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as conn:
            return set(conn.execute(sa.select(BlobRecord.digest)).scalars())
    finally:
        engine.dispose()


def _add_blob(writer: _Writer, driver: StorageDriver, digest: str) -> bool:
    """Add a blob; False if it is no longer stored."""
    info = driver.stat(digest)
    if info is None:
        return False
    try:
        reader = driver.open(digest)
    except BlobNotFound:
        return False
    try:
        writer.add(_blob_member(digest), reader, info.size, 0o600)
    finally:
        reader.close()
    return True


def _blob_member(digest: str) -> str:
    algorithm, _, hexdigest = digest.partition(":")
    return f"blobs/{algorithm}/{hexdigest}"


def _digest_of(member: str) -> str:
    _, algorithm, hexdigest = member.split("/", 2)
    return f"{algorithm}:{hexdigest}"


# -- restore -------------------------------------------------------------------------------


def restore(archive: Path, data_dir: Path, driver: StorageDriver | None = None) -> Summary:
    """Recreate a data directory from `archive` in `data_dir`, which must be empty or absent.

    A failure half-way empties `data_dir` again."""
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise BackupError(f"{data_dir} is not an empty directory: restore into a new one")
    try:
        tar = tarfile.open(archive, "r:*")  # noqa: SIM115 - closed by the `with` below
    except (OSError, tarfile.TarError) as exc:
        raise BackupError(f"cannot read {archive}: {exc}") from exc
    with tar:
        summary = _read_manifest(tar, archive)
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        driver = driver or FilesystemDriver(Config(data_dir=data_dir).blob_dir)
        try:
            _extract(tar, summary, data_dir, driver)
        except (OSError, StorageError, tarfile.TarError) as exc:
            _empty(data_dir)
            raise BackupError(f"cannot restore {archive} into {data_dir}: {exc}") from exc
        except BaseException:
            _empty(data_dir)
            raise
    return summary


def _read_manifest(tar: tarfile.TarFile, archive: Path) -> Summary:
    try:
        stream = tar.extractfile(MANIFEST)
        if stream is None:
            raise KeyError(MANIFEST)
        manifest = json.loads(stream.read())
    except (KeyError, ValueError, OSError, tarfile.TarError) as exc:
        raise BackupError(f"{archive} is not a Baepo backup (no readable manifest)") from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(
            f"{archive} has backup format {manifest.get('format')}; expected {FORMAT}"
        )
    revision = manifest.get("schema_revision")
    if revision is not None and not known_revision(revision):
        raise BackupError(
            f"{archive} was made by a newer Baepo ({manifest.get('baepo_version')}, schema "
            f"{revision}): restore it with that version or a later one"
        )
    members = manifest.get("members")
    if not isinstance(members, dict) or DATABASE not in members:
        raise BackupError(f"{archive} is not a Baepo backup (its manifest lists no database)")
    summary = Summary(revision)
    for name, member in members.items():
        _destination(name)  # refuse a name that would land outside the data directory
        summary.members[name] = member
        summary.count(name, member)
    return summary


def _extract(tar: tarfile.TarFile, summary: Summary, data_dir: Path, driver: StorageDriver) -> None:
    missing = set(summary.members)
    for info in tar:
        member = summary.members.get(info.name)
        if member is None or info.name not in missing:
            continue  # the manifest, or a blob an earlier copy of the database listed
        if member.get("directory"):
            target = data_dir / _destination(info.name)
            target.mkdir(mode=member["mode"] or 0o700, parents=True, exist_ok=True)
            missing.discard(info.name)
            continue
        stream = tar.extractfile(info)
        if stream is None:
            raise BackupError(f"{info.name} in the archive is not a file")
        hashing = _Hashing(stream)
        if info.name.startswith("blobs/"):
            _restore_blob(driver, _digest_of(info.name), hashing, member)
        else:
            _restore_file(data_dir / _destination(info.name), hashing, member["mode"])
            _check(info.name, hashing, member)
        missing.discard(info.name)
    if missing:
        raise BackupError(f"the archive lacks {len(missing)} members, e.g. {sorted(missing)[0]}")


def _destination(name: str) -> PurePosixPath:
    """Where a member goes, relative to the data directory (blobs go through the driver)."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        raise BackupError(f"refusing the member {name!r}: it points outside the data directory")
    if name == DATABASE or name.startswith("blobs/"):
        return path
    if path.parts[0] != "data" or len(path.parts) < 2:
        raise BackupError(f"refusing the member {name!r}: not part of a data directory")
    return PurePosixPath(*path.parts[1:])


def _restore_file(target: Path, stream: _Hashing, mode: int) -> None:
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode & 0o700 or 0o600)
    with os.fdopen(fd, "wb") as out:
        while chunk := stream.read(CHUNK):
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())


def _restore_blob(
    driver: StorageDriver, digest: str, stream: _Hashing, member: dict[str, Any]
) -> None:
    """Stream a blob into an upload and commit it only once its bytes proved right."""
    upload = str(uuid.uuid4())
    driver.create_upload(upload)
    writer = driver.append(upload)
    try:
        while chunk := stream.read(CHUNK):
            writer.write(chunk)
    finally:
        writer.close()
    try:
        _check(f"the blob {digest}", stream, member)
        if digest.startswith("sha256:") and stream.hasher.hexdigest() != digest[7:]:
            raise BackupError(f"the blob {digest} in the archive does not have that digest")
    except BackupError:
        driver.delete_upload(upload)
        raise
    driver.commit_upload(upload, digest)


def _check(what: str, stream: _Hashing, member: dict[str, Any]) -> None:
    if stream.hasher.hexdigest() != member["sha256"] or stream.size != member["size"]:
        raise BackupError(f"{what} in the archive does not match its manifest entry")


def _empty(data_dir: Path) -> None:
    for entry in data_dir.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


# -- streams -------------------------------------------------------------------------------


class _Readable(Protocol):
    def read(self, size: int) -> bytes: ...


class _Hashing:
    """A stream read through this is hashed (sha256) and counted."""

    def __init__(self, stream: _Readable) -> None:
        self.stream = stream
        self.hasher = hashlib.sha256()
        self.size = 0

    def read(self, size: int = CHUNK, /) -> bytes:
        data = self.stream.read(size)
        self.hasher.update(data)
        self.size += len(data)
        return data
