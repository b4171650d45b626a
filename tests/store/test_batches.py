"""Group commit: writes that arrive together share one commit, each in its own savepoint, and
every caller learns what happened to its own write only once it is on disk (on SQLite and on
PostgreSQL)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from baepo.store import Database, lost_a_race
from baepo.store.batches import WriteBatcher
from baepo.store.database import sqlite_url
from tests.databases import Databases, PostgresDatabases, sessions_waiting_on_locks


@pytest.fixture
def db(databases: Databases) -> Iterator[Database]:
    made = items_database(databases.new(migrated=False))
    yield made
    made.dispose()


def items_database(url: str) -> Database:
    made = Database(url)
    with made.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE owners (name TEXT PRIMARY KEY)")
        conn.exec_driver_sql(
            "CREATE TABLE items (name TEXT PRIMARY KEY, n INTEGER, owner TEXT REFERENCES"
            " owners (name) DEFERRABLE INITIALLY DEFERRED)"
        )
    return made


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    made = items_database(sqlite_url(tmp_path / "batches.db"))
    yield made
    made.dispose()


def names(db: Database) -> list[str]:
    with db.engine.connect() as conn:
        return [row[0] for row in conn.exec_driver_sql("SELECT name FROM items ORDER BY name")]


def insert(name: str, n: int = 0) -> sa.TextClause:
    return sa.text("INSERT INTO items (name, n) VALUES (:name, :n)").bindparams(name=name, n=n)


def test_a_write_returns_its_result_once_committed(db: Database) -> None:
    writes = WriteBatcher(db, "test-writes")

    def work(s: Session) -> int:
        s.execute(insert("a", 1))
        return 41 + 1

    assert writes.run(work) == 42
    assert names(db) == ["a"]


def test_many_threads_share_commits_and_each_failure_stays_its_own(db: Database) -> None:
    writes = WriteBatcher(db, "test-writes")
    commits = 0

    def counted(_: object) -> None:
        nonlocal commits
        commits += 1

    event.listen(db.engine, "commit", counted)
    gate = threading.Barrier(40)

    def one(i: int) -> str:
        gate.wait()

        def work(s: Session) -> str:
            s.execute(insert(f"item-{i:02d}", i))
            if i % 10 == 3:
                raise ValueError(f"refused {i}")
            return f"item-{i:02d}"

        try:
            return writes.run(work)
        except ValueError as exc:
            return str(exc)

    with ThreadPoolExecutor(40) as pool:
        results = list(pool.map(one, range(40)))
    refused = {i for i in range(40) if i % 10 == 3}
    assert results == [f"refused {i}" if i in refused else f"item-{i:02d}" for i in range(40)]
    assert names(db) == [f"item-{i:02d}" for i in range(40) if i not in refused]
    assert commits < 40  # writes that waited together went in one commit


def test_a_constraint_violation_is_the_callers_and_the_rest_commits(db: Database) -> None:
    writes = WriteBatcher(db, "test-writes")
    writes.run(lambda s: s.execute(insert("taken")))
    with pytest.raises(IntegrityError):
        writes.run(lambda s: s.execute(insert("taken")))
    writes.run(lambda s: s.execute(insert("free")))
    assert names(db) == ["free", "taken"]


def test_a_failed_commit_is_every_callers_error(db: Database) -> None:
    writes = WriteBatcher(db, "test-writes")
    gate = threading.Barrier(8)

    def one(i: int) -> str:
        gate.wait()
        # The owner is checked at the commit (a deferred key): a missing one fails the commit.
        orphan = "missing" if i == 0 else None
        statement = sa.text("INSERT INTO items (name, n, owner) VALUES (:name, 0, :owner)")
        try:
            writes.run(lambda s: s.execute(statement, {"name": f"item-{i}", "owner": orphan}))
        except IntegrityError:
            return "failed"
        return "committed"

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(8)))
    # Whoever shared item-0's commit failed with it, and nothing of theirs is there.
    assert results[0] == "failed"
    assert names(db) == [f"item-{i}" for i in range(8) if results[i] == "committed"]
    writes.run(lambda s: s.execute(insert("later")))  # the batcher goes on
    assert "later" in names(db)


def test_a_trigger_that_refuses_a_write_refuses_that_write_only(sqlite_db: Database) -> None:
    db = sqlite_db
    writes = WriteBatcher(db, "test-writes")
    writes.run(lambda s: s.execute(insert("before")))
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER refuse BEFORE INSERT ON items BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    with pytest.raises(IntegrityError):
        writes.run(lambda s: s.execute(insert("after")))
    # The batcher goes on after an error.
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER refuse")
    writes.run(lambda s: s.execute(insert("later")))
    assert names(db) == ["before", "later"]


def test_the_write_lock_held_elsewhere_is_waited_for_then_reported(tmp_path: Path) -> None:
    db = Database(sqlite_url(tmp_path / "locked.db"))

    def impatient(dbapi_conn: Any, _record: object) -> None:
        dbapi_conn.execute("PRAGMA busy_timeout=100")  # after Database's own 30 s

    event.listen(db.engine, "connect", impatient)
    with db.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE items (name TEXT PRIMARY KEY, n INTEGER)")
    other = db.engine.raw_connection()
    try:
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock throughout
        with pytest.raises(OperationalError, match="locked"):
            WriteBatcher(db, "test-writes").run(lambda s: s.execute(insert("blocked")))
    finally:
        other.rollback()
        other.close()
        db.dispose()


def test_a_write_may_not_start_another(db: Database) -> None:
    writes = WriteBatcher(db, "test-writes")

    def nested(s: Session) -> None:
        writes.run(lambda inner: inner.execute(insert("inner")))

    with pytest.raises(RuntimeError, match="may not start another write"):
        writes.run(nested)
    assert names(db) == []


def test_on_postgresql_a_write_that_loses_a_race_with_another_process_fails_alone(
    postgres_databases: PostgresDatabases,
) -> None:
    with postgres_databases.database(migrated=False) as url:
        db = items_database(url)
        writes = WriteBatcher(db, "test-writes")
        other = db.engine.connect()  # another process's transaction, not committed yet
        other.execute(insert("taken"))
        with ThreadPoolExecutor(1) as pool:
            loser = pool.submit(writes.run, lambda s: s.execute(insert("taken")))
            other.commit()  # the loser waits on the row until then, if it got there first
            with pytest.raises(IntegrityError):
                loser.result(timeout=60)
        other.close()
        writes.run(lambda s: s.execute(insert("free")))
        assert names(db) == ["free", "taken"]
        db.dispose()


def test_on_postgresql_a_deadlock_with_another_process_is_a_race_lost(
    postgres_databases: PostgresDatabases,
) -> None:
    """The batcher's write and another transaction lock two rows in opposite orders: one of
    them is chosen to give way, with an error that says doing it again may succeed."""
    with postgres_databases.database(migrated=False) as url:
        db = items_database(url)
        writes = WriteBatcher(db, "test-writes")
        writes.run(lambda s: (s.execute(insert("a")), s.execute(insert("b"))))
        bump = sa.text("UPDATE items SET n = n + 1 WHERE name = :name")
        other = db.engine.connect()
        other.execute(bump, {"name": "b"})  # the other holds b

        def a_then_b(s: Session) -> None:
            s.execute(bump, {"name": "a"})
            s.execute(bump, {"name": "b"})  # waits for the other

        errors: list[SQLAlchemyError] = []
        with ThreadPoolExecutor(1) as pool:
            batched = pool.submit(writes.run, a_then_b)
            deadline = time.monotonic() + 60
            while not batched.done() and sessions_waiting_on_locks(db) == 0:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            try:
                other.execute(bump, {"name": "a"})  # and now wants a: a deadlock
                other.commit()
            except SQLAlchemyError as exc:
                errors.append(exc)
                other.rollback()
            try:
                batched.result(timeout=60)
            except SQLAlchemyError as exc:
                errors.append(exc)
        other.close()
        assert len(errors) == 1 and lost_a_race(errors[0])
        db.dispose()
