"""The database handle every room shares.

Each room declares its own tables on `Base` (in its own `tables.py`); `baepo.schema` gathers
them, and the composition root hands that metadata to `Database.migrate()`, so the store knows
SQL only and never imports a room. Sessions are short:
one unit of work, then commit or roll back (`with db.session() as s, s.begin(): ...`).
SQLite runs in WAL mode with a busy timeout so request threads and loops can share it.

PostgreSQL is chosen by URL (`postgresql+psycopg://user:password@host/db`; a plain
`postgresql://` means psycopg 3 too, the driver Baepo ships). The same migrations build the
same schema on both; what differs by dialect is said where it does (`is_sqlite`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from baepo.store.errors import StoreUnavailable


class Base(DeclarativeBase):
    pass


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def driver_url(url: str) -> sa.URL:
    """`url` parsed, PostgreSQL's driver made psycopg 3 when it names none (SQLAlchemy's
    default, psycopg2, is not installed)."""
    try:
        parsed = sa.make_url(url)
    except SQLAlchemyError as exc:
        raise StoreUnavailable(f"not a database URL: {url!r}") from exc
    if parsed.drivername == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    return parsed


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        parsed = driver_url(url)
        self.shown = parsed.render_as_string(hide_password=True)
        """The URL as messages may show it: the password starred."""
        try:
            self.engine: Engine = sa.create_engine(parsed, pool_pre_ping=True)
        except (SQLAlchemyError, ImportError) as exc:
            raise StoreUnavailable(f"cannot open database {self.shown}: {reason(exc)}") from exc
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def migrate(self, metadata: MetaData) -> None:
        """Bring the schema up to date (Alembic migrations under `store/migrations`).

        `metadata` is the whole declared schema: an empty database is created from it directly.
        """
        from baepo.store.migrations import upgrade

        try:
            upgrade(self.engine, metadata)
        except SQLAlchemyError as exc:
            raise StoreUnavailable(f"cannot migrate database {self.shown}: {reason(exc)}") from exc

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as s:
            yield s

    def dispose(self) -> None:
        self.engine.dispose()


def serialize(s: Session, topic: str) -> None:
    """Hold `topic` until the session's transaction ends: another transaction that asks for it
    meanwhile waits, then reads what this one committed.

    For a decision read from rows that no earlier write of the transaction locked (a quota
    over an owner's services, a domain no other service may hold). On PostgreSQL, a
    transaction-scoped advisory lock keyed by the topic's hash; SQLite needs nothing more: its
    one write lock, taken by each such transaction's first write, already orders them all.
    """
    if s.get_bind().dialect.name == "sqlite":
        return
    s.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": topic_key(topic)})


def topic_key(topic: str) -> int:
    """PostgreSQL's advisory lock key (a bigint) for `topic`."""
    return int.from_bytes(hashlib.blake2b(topic.encode(), digest_size=8).digest(), signed=True)


def nul_place(value: object, place: str = "") -> str | None:
    """Where the first string of `value` (a JSON document) holding a NUL character is, as a
    dotted path (`env.A`, `scopes.0`; `place` for `value` itself), or None. PostgreSQL's text
    cannot keep one (psycopg refuses the statement), so the edges refuse such input as bad
    before it reaches a room (api/text.py, aws/protocol.py)."""
    if isinstance(value, str):
        return place if "\x00" in value else None
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        return None
    for key, item in items:
        inner = f"{place}.{key}" if place else str(key)
        if "\x00" in str(key):
            return place
        found = nul_place(item, inner)
        if found is not None:
            return found
    return None


def reason(exc: Exception) -> str:
    """An error in one line: SQLAlchemy's first (the driver's message), not the statement,
    its parameters and a link to its documentation."""
    return str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__


RACE_STATES = ("40001", "40P01")
"""PostgreSQL's serialization_failure and deadlock_detected."""


def lost_a_race(exc: SQLAlchemyError) -> bool:
    """Whether the statement failed only because a concurrent transaction got in its way (on
    PostgreSQL: a deadlock, in which it was chosen to give way; a serialization failure): the
    same work done again may well succeed."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in RACE_STATES


def affected(result: sa.Result[Any]) -> int:
    """The rows an UPDATE or DELETE touched: `Session.execute` is typed as returning a plain
    `Result`, but for those statements it is always a `CursorResult`, which counts them."""
    return cast("sa.CursorResult[Any]", result).rowcount


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on disk before it is acknowledged. With NORMAL a push answered 201
    # could vanish with the page cache (power loss, or ext4 turning read-only after an error:
    # tests/abuse/test_read_only.py saw exactly that). Costs one fsync of the WAL per commit.
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()
