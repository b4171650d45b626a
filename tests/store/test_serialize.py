"""`serialize`: on PostgreSQL, a transaction that asks for a topic another one holds waits for
its commit, then reads what it wrote; other topics do not wait."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from baepo.store import Database, serialize
from tests.databases import PostgresDatabases, sessions_waiting_on_locks


def count_after_waiting_for(db: Database, topic: str) -> int:
    with db.session() as s, s.begin():
        serialize(s, topic)
        return int(s.execute(sa.text("SELECT count(*) FROM items")).scalar_one())


def test_a_topic_is_held_until_the_transaction_that_took_it_ends(
    postgres_databases: PostgresDatabases,
) -> None:
    with postgres_databases.database(migrated=False) as url:
        db = Database(url)
        with db.engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE items (name TEXT PRIMARY KEY)")
        with db.session() as first, ThreadPoolExecutor(2) as pool:
            first.begin()
            serialize(first, "quota")
            first.execute(sa.text("INSERT INTO items VALUES ('a')"))
            waiting = pool.submit(count_after_waiting_for, db, "quota")
            assert pool.submit(count_after_waiting_for, db, "domains").result(timeout=60) == 0
            deadline = time.monotonic() + 60
            while sessions_waiting_on_locks(db, "advisory") == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert sessions_waiting_on_locks(db, "advisory") == 1 and not waiting.done()
            first.commit()
            assert waiting.result(timeout=60) == 1  # it read the row committed before it
        db.dispose()
