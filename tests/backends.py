"""Where the `baepo up` processes of the tests keep their state and blobs: one switch.

`BAEPO_TEST_BACKEND=postgres-s3` gives every `baepo up` a test starts (tests/conftest.py's
`BaepoProcess`) a new PostgreSQL database (the tests' PostgreSQL, tests/databases.py) and an S3
bucket of its own (the session's SeaweedFS, tests/s3server.py), unless its flags already name a
database (`--database-url`) or a storage (`--storage`). Unset, or `sqlite-fs`: Baepo's defaults,
SQLite and the filesystem in its data directory.

Both are made the first time a process on that data directory starts, and kept for the data
directory, as its baepo.db and blobs would be: a restart, or a new process on the same data
directory, finds what the last one wrote. The S3 server starts with the first process that needs
it (or the first test that asks for `s3_server`); the databases are dropped at the session's end.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.databases import PostgresDatabases, postgres_admin_url
from tests.s3server import ACCESS_KEY, SECRET_KEY, S3Server

VARIABLE = "BAEPO_TEST_BACKEND"
SQLITE_FS = "sqlite-fs"
POSTGRES_S3 = "postgres-s3"


def backend() -> str:
    """The backend this run's Baepo processes use (`BAEPO_TEST_BACKEND`, default `sqlite-fs`)."""
    named = os.environ.get(VARIABLE) or SQLITE_FS
    if named not in (SQLITE_FS, POSTGRES_S3):
        raise pytest.UsageError(f"{VARIABLE}={named}: expected {SQLITE_FS} or {POSTGRES_S3}")
    return named


on_sqlite_fs_only = pytest.mark.skipif(
    backend() != SQLITE_FS,
    reason=f"about SQLite's baepo.db or the data directory's disk ({VARIABLE}={backend()})",
)
"""For a test of what only exists on SQLite and the filesystem: `baepo backup`, an upgrade of
an older baepo.db, the data directory's disk full or read-only."""


def names_a_database(flags: tuple[str, ...]) -> bool:
    return any(flag.split("=")[0] == "--database-url" for flag in flags)


def names_a_storage(flags: tuple[str, ...]) -> bool:
    return any(flag.split("=")[0] == "--storage" for flag in flags)


class Backends:
    """The session's S3 server and PostgreSQL databases, started when first wanted."""

    def __init__(self) -> None:
        self.root: Path | None = None
        self._s3: S3Server | None = None
        self._postgres: PostgresDatabases | None = None
        self._made: dict[Path, tuple[str, ...]] = {}
        self._buckets: dict[Path, str] = {}
        self._cleanup = ExitStack()

    def s3(self) -> S3Server:
        if self._s3 is None:
            if self.root is None:
                self.root = Path(tempfile.mkdtemp(prefix="baepo-backends-"))
            (root := self.root / "s3").mkdir(parents=True, exist_ok=True)
            server = S3Server(root)
            server.start()
            self._cleanup.callback(server.stop)
            self._s3 = server
        return self._s3

    def postgres(self) -> PostgresDatabases:
        if self._postgres is None:
            databases = PostgresDatabases(postgres_admin_url())
            self._cleanup.callback(databases.close)
            self._postgres = databases
        return self._postgres

    def flags_for(self, data_dir: Path, flags: tuple[str, ...]) -> tuple[str, ...]:
        """What to add to `baepo up … flags` on `data_dir` for this run's backend."""
        if backend() == SQLITE_FS:
            return ()
        key = data_dir.resolve()
        if key not in self._made:
            self._made[key] = self._database(flags) + self._storage(key, flags)
        return self._made[key]

    def database_url(self, data_dir: Path) -> str:
        """The state database of Baepo on `data_dir`: this run's backend's, else its baepo.db."""
        flags = self._made.get(data_dir.resolve(), ())
        if "--database-url" in flags:
            return flags[flags.index("--database-url") + 1]
        return f"sqlite:///{data_dir / 'baepo.db'}"

    def stored_files(self, data_dir: Path) -> list[str]:
        """Every file Baepo on `data_dir` stored: in the data directory (relative paths), and
        in the bucket this run's backend gave it (object keys)."""
        files = [p.relative_to(data_dir).as_posix() for p in data_dir.rglob("*") if p.is_file()]
        bucket = self._buckets.get(data_dir.resolve())
        if bucket is not None:
            files += self.s3().objects(bucket)
        return files

    def stored_uploads(self, data_dir: Path) -> set[str]:
        """The ids of the blob uploads Baepo on `data_dir` holds: files in registry/uploads/
        on disk, or keys under uploads/<id>/ in its bucket."""
        found = set()
        for path in self.stored_files(data_dir):
            parts = path.split("/")
            if "uploads" in parts[:-1]:
                found.add(parts[parts.index("uploads") + 1])
        return found

    def _database(self, flags: tuple[str, ...]) -> tuple[str, ...]:
        if names_a_database(flags):
            return ()
        url = self._cleanup.enter_context(self.postgres().database(migrated=False))
        return ("--database-url", url)

    def _storage(self, data_dir: Path, flags: tuple[str, ...]) -> tuple[str, ...]:
        if names_a_storage(flags):
            return ()
        server = self.s3()
        bucket = self._buckets[data_dir] = server.bucket()
        return ("--storage", "s3", "--s3-endpoint", server.endpoint, "--s3-bucket", bucket,
                "--s3-access-key", ACCESS_KEY, "--s3-secret-key", SECRET_KEY)  # fmt: skip

    def close(self) -> None:
        """Drop the databases (LIFO: before the template's owner closes), stop the S3 server."""
        self._cleanup.close()
        self._made.clear()
        self._buckets.clear()
        self._s3 = self._postgres = None


BACKENDS = Backends()
"""The session's: tests/conftest.py gives it a temporary directory and closes it at the end."""
