"""Copying a state database into another, e.g. SQLite into PostgreSQL (`baepo migrate-state`).

The target gets its schema from the migrations (at head, as `baepo up` would make it), then
the rows of every declared table, parents before children (`MetaData.sorted_tables`), read and
written through the declared column types, so a value means the same on both sides (SQLite's
0/1 becomes a boolean, its zone-less text a UTC timestamp, its JSON text a JSON value). All of
it is one transaction on the target: a copy that fails leaves it as it was. Then each
auto-numbered key's sequence is moved past the copied ids, so the next insert does not collide.

A SQLite source is copied first with the online backup API (`snapshots.snapshot`) and that copy
migrated to head: the source itself is never changed, and a Baepo still running on it is read
as one commit left it (stop it before switching over anyway: what it writes later is not
copied). A target that holds any row is refused: a copy merged into live state would be neither.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import MetaData
from sqlalchemy.exc import SQLAlchemyError

from baepo.store.database import Database, driver_url, reason
from baepo.store.errors import StoreUnavailable, TargetNotEmpty
from baepo.store.migrations import current_revision, head_revision
from baepo.store.snapshots import snapshot

CHUNK = 1000
"""Rows read and inserted per round trip."""


@dataclass(frozen=True)
class Transfer:
    tables: int
    rows: int


def transfer(source_url: str, target_url: str, metadata: MetaData) -> Transfer:
    """Copy every row of `metadata`'s tables from `source_url` into `target_url` (see above)."""
    source = driver_url(source_url)
    if source.get_backend_name() == "sqlite":
        if not source.database:
            raise StoreUnavailable("the source must be a SQLite file, not an in-memory database")
        with tempfile.TemporaryDirectory(prefix="baepo-transfer-") as scratch:
            copy = Path(scratch) / "state.db"
            snapshot(Path(source.database), copy)
            from_db = Database(f"sqlite:///{copy}")
            try:
                from_db.migrate(metadata)
                return _transfer(from_db, target_url, metadata)
            finally:
                from_db.dispose()
    from_db = Database(source_url)
    try:
        if current_revision(from_db.engine) != head_revision():
            raise StoreUnavailable(
                f"{from_db.shown} is not at this Baepo's schema: start this Baepo on it once"
            )
        return _transfer(from_db, target_url, metadata)
    except SQLAlchemyError as exc:
        raise StoreUnavailable(f"cannot read {from_db.shown}: {reason(exc)}") from exc
    finally:
        from_db.dispose()


def _transfer(source: Database, target_url: str, metadata: MetaData) -> Transfer:
    target = Database(target_url)
    try:
        if sa.inspect(target.engine).get_table_names() and not current_revision(target.engine):
            raise TargetNotEmpty(f"{target.shown} holds tables that are not Baepo's")
        target.migrate(metadata)
        # One snapshot of a live server's rows (PostgreSQL's READ COMMITTED would give each
        # table's read its own); a SQLite source is already a copy no one writes.
        options = {} if source.is_sqlite else {"isolation_level": "REPEATABLE READ"}
        with (
            source.engine.connect().execution_options(**options) as reading,
            reading.begin(),
            target.engine.begin() as writing,
        ):
            _refuse_rows(writing, metadata, target.shown)
            rows = sum(_copy_table(table, reading, writing) for table in metadata.sorted_tables)
            if not target.is_sqlite:
                _advance_sequences(writing, metadata)
        return Transfer(tables=len(metadata.sorted_tables), rows=rows)
    except SQLAlchemyError as exc:
        raise StoreUnavailable(f"cannot copy into {target.shown}: {reason(exc)}") from exc
    finally:
        target.dispose()


def _refuse_rows(conn: sa.Connection, metadata: MetaData, shown: str) -> None:
    for table in metadata.sorted_tables:
        if conn.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first():
            raise TargetNotEmpty(
                f"{shown} is not empty (its table {table.name} has rows): copy into a new database"
            )


def _copy_table(table: sa.Table, reading: sa.Connection, writing: sa.Connection) -> int:
    copied = 0
    order = list(table.primary_key.columns) or list(table.columns)
    query = sa.select(table).order_by(*order)
    try:
        result = reading.execution_options(yield_per=CHUNK).execute(query)
        for chunk in result.mappings().partitions(CHUNK):
            writing.execute(sa.insert(table), [dict(row) for row in chunk])
            copied += len(chunk)
    except SQLAlchemyError as exc:
        raise StoreUnavailable(f"cannot copy the table {table.name}: {reason(exc)}") from exc
    return copied


def _advance_sequences(conn: sa.Connection, metadata: MetaData) -> None:
    """PostgreSQL numbers new rows from a sequence that the copied ids did not advance."""
    quote = conn.dialect.identifier_preparer.quote
    for table in metadata.sorted_tables:
        key = table.autoincrement_column
        if key is None:
            continue
        column, name = quote(key.name), quote(table.name)
        conn.execute(
            sa.text(
                "SELECT setval(pg_get_serial_sequence(:table, :column), "
                f"COALESCE(MAX({column}), 1), MAX({column}) IS NOT NULL) FROM {name}"
            ),
            {"table": name, "column": key.name},
        )
