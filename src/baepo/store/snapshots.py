"""Point-in-time copies of a live SQLite state database, and the schema revision of a copy.

`snapshot` uses SQLite's online backup API in one step: it copies every page inside one read
transaction, so the copy is the database as one commit left it, while Baepo keeps writing
(in WAL mode a reader never blocks the writer, nor the writer the reader). Copying the file
(and its -wal) instead could catch a checkpoint half-way.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from baepo.store.errors import StoreUnavailable
from baepo.store.migrations import HERE

BUSY_TIMEOUT_S = 30.0


def snapshot(source: Path, target: Path) -> None:
    """Copy the SQLite database at `source` into a new file `target`, consistently."""
    if not source.is_file():
        raise StoreUnavailable(f"no database at {source}")
    try:
        with (
            closing(sqlite3.connect(source, timeout=BUSY_TIMEOUT_S)) as live,
            closing(sqlite3.connect(target)) as copy,
        ):
            live.backup(copy)  # pages=-1: every page in one step, one read transaction
            problem = copy.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"cannot copy the database {source}: {exc}") from exc
    if problem != "ok":
        raise StoreUnavailable(f"the copy of {source} is damaged: {problem}")


def revision_of(path: Path) -> str | None:
    """The Alembic revision the database at `path` is at (None: not migrated yet)."""
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            if db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
            ).fetchone():
                row = db.execute("SELECT version_num FROM alembic_version").fetchone()
                return str(row[0]) if row else None
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"cannot read the schema revision of {path}: {exc}") from exc
    return None


def known_revision(revision: str) -> bool:
    """Whether this Baepo's migrations know `revision` (a newer Baepo's is unknown: this
    one could not run on it)."""
    declared = f'revision: str = "{revision}"'
    return any(declared in path.read_text() for path in (HERE / "versions").glob("*.py"))
