"""`SessionLocks`: locks two processes on one PostgreSQL database respect across transactions
(here two `Database`s on one database, each with its own pool, as two processes have)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from baepo.store import Database, StoreUnavailable
from baepo.store.locks import SessionLocks
from tests.databases import PostgresDatabases


@pytest.fixture
def two(postgres_databases: PostgresDatabases) -> Iterator[tuple[Database, Database]]:
    with postgres_databases.database() as url:
        dbs = Database(url), Database(url)
        yield dbs
        for db in dbs:
            db.dispose()


def test_shared_holders_coexist_and_keep_an_exclusive_one_out(
    two: tuple[Database, Database],
) -> None:
    one, other = SessionLocks(two[0]), SessionLocks(two[1])
    with one.shared("blob a"), other.shared("blob a"):
        with one.exclusive("blob b") as alone:
            assert alone  # another topic
        with other.exclusive("blob a") as alone:
            assert not alone  # the other process holds it too
    with one.shared("blob a"):
        with one.exclusive("blob a") as alone:
            assert alone  # a process is granted what it holds: its threads are its to order
        with other.exclusive("blob a") as alone:
            assert not alone
    with other.exclusive("blob a") as alone:
        assert alone


def test_a_shared_holder_waits_for_the_exclusive_one_then_gives_up(
    two: tuple[Database, Database],
) -> None:
    one, other = SessionLocks(two[0]), SessionLocks(two[1], wait_s=0.2)
    entered = threading.Event()

    def wait_then_enter() -> None:
        with SessionLocks(two[1]).shared("blob a"):
            entered.set()

    with one.exclusive("blob a") as alone:
        assert alone
        gave_up = pytest.raises(StoreUnavailable, match="blob a stayed locked by another process")
        with gave_up, other.shared("blob a"):
            pass
        waiter = threading.Thread(target=wait_then_enter)
        waiter.start()
    waiter.join(30)
    assert entered.is_set()


def test_the_connection_goes_back_to_the_pool_once_nothing_is_held(
    two: tuple[Database, Database],
) -> None:
    db = two[0]
    locks = SessionLocks(db)
    before = db.engine.pool.checkedout()  # type: ignore[attr-defined]
    with locks.shared("blob a"), locks.shared("blob b"):
        assert db.engine.pool.checkedout() == before + 1  # type: ignore[attr-defined]
    assert db.engine.pool.checkedout() == before  # type: ignore[attr-defined]
    with locks.exclusive("blob a"):
        pass
    assert db.engine.pool.checkedout() == before  # type: ignore[attr-defined]


def test_a_lost_connection_releases_its_locks_and_the_next_take_connects_again(
    two: tuple[Database, Database],
) -> None:
    holder, other = SessionLocks(two[0]), SessionLocks(two[1])
    with holder.shared("blob a"):
        with two[1].engine.connect() as conn:  # the connection is killed under the holder
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
                    " AND database = (SELECT oid FROM pg_database"
                    " WHERE datname = current_database()) AND pid <> pg_backend_pid()"
                )
            )
        with other.exclusive("blob a") as alone:
            assert alone  # what the dead connection held is free
        with pytest.raises(StoreUnavailable), holder.shared("blob b"):
            pass
    with holder.shared("blob a"), other.exclusive("blob a") as alone:
        assert not alone
