"""`baepo migrate-state`: a SQLite state database copied into PostgreSQL, every row of every
table the same, new rows numbered after the copied ones, and a target with rows refused."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from baepo.auth import Auth
from baepo.cli.main import app
from baepo.clock import FakeClock
from baepo.schema import schema
from baepo.store import Database, StoreUnavailable, UtcDateTime
from baepo.store.errors import TargetNotEmpty
from baepo.store.transfers import transfer
from tests.databases import PostgresDatabases

ROWS = 3


def value(column: sa.Column[Any], i: int, made: dict[str, list[dict[str, Any]]]) -> Any:
    """Row `i`'s value of `column`: the parent's row `i`'s key for a foreign key, else one of
    the column's type that no other row has."""
    for key in column.foreign_keys:
        return made[key.column.table.name][i][key.column.name]
    kind = column.type
    if isinstance(kind, sa.Boolean):
        return i % 2 == 0
    if isinstance(kind, UtcDateTime):
        return datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC) + timedelta(hours=i)
    if isinstance(kind, sa.JSON):
        return {"i": i, "nested": {"list": [1, "two", None]}, "text": "é ✓"}
    if isinstance(kind, sa.BigInteger):
        return 2**40 + i  # past 32 bits
    if isinstance(kind, sa.Integer):
        return i + 1 if column.primary_key else 1000 + i
    if isinstance(kind, sa.Float):
        return i + 0.1  # a fraction with no exact binary form: copied bit for bit
    text = f"{column.name}-{i}-é"
    length = getattr(kind, "length", None)
    return text[-length:] if length else text


def fill(db: Database) -> dict[str, list[dict[str, Any]]]:
    """`ROWS` rows in every declared table, each column set (the ids explicitly)."""
    made: dict[str, list[dict[str, Any]]] = {}
    with db.engine.begin() as conn:
        for table in schema().sorted_tables:
            rows = [{c.name: value(c, i, made) for c in table.columns} for i in range(ROWS)]
            conn.execute(sa.insert(table), rows)
            made[table.name] = rows
    return made


def contents(db: Database) -> dict[str, list[dict[str, Any]]]:
    with db.engine.connect() as conn:
        return {
            table.name: [
                dict(row)
                for row in conn.execute(
                    sa.select(table).order_by(*table.primary_key.columns)
                ).mappings()
            ]
            for table in schema().sorted_tables
        }


@pytest.fixture
def source(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'baepo.db'}")
    db.migrate(schema())
    fill(db)
    return db


def test_every_row_of_every_table_is_copied_into_postgresql_as_it_was(
    source: Database, tmp_path: Path, postgres_databases: PostgresDatabases
) -> None:
    before = hashlib.sha256((tmp_path / "baepo.db").read_bytes()).hexdigest()
    with postgres_databases.database(migrated=False) as url:
        copied = transfer(source.url, url, schema())
        target = Database(url)
        assert copied.tables == len(schema().sorted_tables)
        assert copied.rows == ROWS * copied.tables
        assert contents(target) == contents(source)
        # New rows are numbered after the copied ones (the sequences moved past them).
        auth = Auth(target, b"k" * 32, FakeClock())
        assert auth.create_user("newcomer", "newcomer-password").name == "newcomer"
        with target.engine.connect() as conn:
            ids = conn.execute(sa.text("SELECT id FROM auth_users ORDER BY id")).scalars().all()
        assert ids == [1, 2, 3, 4]
        target.dispose()
    assert hashlib.sha256((tmp_path / "baepo.db").read_bytes()).hexdigest() == before


def test_a_target_with_rows_is_refused_and_left_as_it_was(
    source: Database, postgres_databases: PostgresDatabases
) -> None:
    with postgres_databases.database(migrated=False) as url:
        transfer(source.url, url, schema())
        with pytest.raises(TargetNotEmpty, match="not empty"):
            transfer(source.url, url, schema())
        target = Database(url)
        assert contents(target) == contents(source)  # nothing copied twice
        target.dispose()


def test_a_target_holding_something_else_is_refused(
    source: Database, postgres_databases: PostgresDatabases
) -> None:
    with postgres_databases.database(migrated=False) as url:
        other = sa.create_engine(Database(url).engine.url)
        with other.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
        other.dispose()
        with pytest.raises(TargetNotEmpty, match="not Baepo's"):
            transfer(source.url, url, schema())


def test_a_missing_source_is_one_clear_error(
    tmp_path: Path, postgres_databases: PostgresDatabases
) -> None:
    with (
        postgres_databases.database(migrated=False) as url,
        pytest.raises(StoreUnavailable, match="no database at"),
    ):
        transfer(f"sqlite:///{tmp_path / 'none.db'}", url, schema())


def test_the_command_copies_the_data_directorys_database_once(
    source: Database, tmp_path: Path, postgres_databases: PostgresDatabases
) -> None:
    runner = CliRunner()
    with postgres_databases.database(migrated=False) as url:
        args = ["migrate-state", "--data-dir", str(tmp_path), "--to", url]
        done = runner.invoke(app, args)
        assert done.exit_code == 0, done.output
        assert f"copied {ROWS * len(schema().sorted_tables)} rows" in done.output
        again = runner.invoke(app, args)
        assert again.exit_code == 1
        assert again.output.startswith("error:") and "is not empty" in again.output
