"""The state databases the store's suites run on: SQLite, and PostgreSQL.

The `database_url` fixture (tests/conftest.py) gives each test a new database without rows,
of each dialect in turn: a SQLite file under the test's tmp_path (made by the first `migrate()`),
or a PostgreSQL database at the schema's head, made by `CREATE DATABASE … TEMPLATE` from one
migrated at the session's start (~0.1 s; migrating each would cost ~0.3 s), dropped after the
test. `databases` makes more of them, or empty ones, for the tests of the migrations.

The PostgreSQL is the one `BAEPO_TEST_POSTGRES` names (scripts/test sets it from
scripts/postgres), else the one scripts/postgres starts. Where it cannot be had, its tests are
skipped, or fail when the real thing is required (tests/components.py).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from baepo.schema import schema
from baepo.store import Database
from tests.components import ROOT, missing

POSTGRES = "BAEPO_TEST_POSTGRES"
DIALECTS = ("sqlite", "postgresql")


def postgres_admin_url() -> str:
    """The URL of the tests' PostgreSQL's `postgres` database, started if need be."""
    named = os.environ.get(POSTGRES)
    if named:
        return named
    try:
        started = subprocess.run(
            [str(ROOT / "scripts" / "postgres")], capture_output=True, text=True, timeout=120
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        missing(f"scripts/postgres failed: {exc}")
    if started.returncode != 0:
        reason = (started.stderr.strip().splitlines() or ["no reason given"])[-1]
        missing(f"no PostgreSQL for the tests (scripts/postgres: {reason})")
    url = started.stdout.strip().splitlines()[-1]
    os.environ[POSTGRES] = url
    return url


class PostgresDatabases:
    """Throw-away databases on one PostgreSQL, copied from a template at the schema's head."""

    def __init__(self, admin_url: str) -> None:
        self._admin_url = sa.make_url(admin_url)
        # AUTOCOMMIT: CREATE and DROP DATABASE may not run in a transaction.
        self._admin = sa.create_engine(
            self._admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool
        )
        self._template = f"baepo_template_{uuid.uuid4().hex[:12]}"
        self._execute(f"CREATE DATABASE {self._template}")
        migrated = Database(self.url_of(self._template))
        try:
            migrated.migrate(schema())
        finally:
            migrated.dispose()  # a template may have no connection while it is copied

    def url_of(self, name: str) -> str:
        return self._admin_url.set(database=name).render_as_string(hide_password=False)

    @contextmanager
    def database(self, *, migrated: bool = True) -> Iterator[str]:
        """A new database's URL, dropped (with whatever still holds it open) afterwards."""
        name = f"baepo_test_{uuid.uuid4().hex[:12]}"
        template = self._template if migrated else "template0"
        self._execute(f"CREATE DATABASE {name} TEMPLATE {template}")
        try:
            yield self.url_of(name)
        finally:
            self._execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def close(self) -> None:
        self._execute(f"DROP DATABASE IF EXISTS {self._template} WITH (FORCE)")
        self._admin.dispose()

    def _execute(self, sql: str) -> None:
        with self._admin.connect() as conn:
            conn.exec_driver_sql(sql)


class Databases:
    """New state databases of one dialect for one test, all gone after it."""

    def __init__(self, dialect: str, tmp_path: Path, postgres: PostgresDatabases | None) -> None:
        self.dialect = dialect
        self._tmp_path = tmp_path
        self._postgres = postgres
        self._made = ExitStack()

    def new(self, *, migrated: bool = True) -> str:
        """A new database's URL: at the schema's head on PostgreSQL unless not `migrated`
        (SQLite's file is made by the first `migrate()`, or by whoever connects first)."""
        if self._postgres is None:
            return f"sqlite:///{self._tmp_path / f'state-{uuid.uuid4().hex[:8]}.db'}"
        return self._made.enter_context(self._postgres.database(migrated=migrated))

    def close(self) -> None:
        self._made.close()


def sessions_waiting_on_locks(db: Database, kind: str | None = None) -> int:
    """How many sessions of `db`'s PostgreSQL database wait on a lock (of `kind`, e.g.
    `advisory`, `transactionid`): how a test sees that another transaction waits."""
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock' AND (CAST(:kind AS text) IS NULL OR wait_event = :kind)"
    )
    with db.engine.connect() as conn:
        return int(conn.execute(sa.text(query), {"kind": kind}).scalar_one())
