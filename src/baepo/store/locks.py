"""Locks that the processes sharing one PostgreSQL database respect, held across transactions.

`serialize` (database.py) orders transactions; some work must be ordered against another
process's work that spans more than one transaction and a call outside the database (the
registry's collector deletes a blob's row, then its bytes; an upload's commit stores its
bytes, then writes the row). `SessionLocks` holds PostgreSQL's session-level advisory locks,
keyed by a topic's hash: `shared(topic)` waits while another process holds the topic
exclusively (at most `wait_s`), `exclusive(topic)` only tries, and says whether it got it.

All of one process's locks live on one connection of the database's pool, checked out while
any is held and given back when the last one is released: however many requests hold locks at
once, they take one connection, so they never starve the writes they wait for. Within one
process these locks do not exclude each other (PostgreSQL grants a session what it already
holds): the caller orders its own threads (`registry/records.py`'s `BlobGuard`). A connection
that fails is closed, which releases its locks in PostgreSQL: the holders' releases then do
nothing, and the error reaches the caller as `StoreUnavailable`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from baepo.store.database import Database, reason, topic_key
from baepo.store.errors import StoreUnavailable


class SessionLocks:
    def __init__(self, db: Database, wait_s: float = 30.0, poll_s: float = 0.02) -> None:
        self._db = db
        self._wait_s = wait_s
        self._poll_s = poll_s
        self._mutex = threading.Lock()
        self._conn: sa.Connection | None = None
        self._held = 0
        self._generation = 0  # grows with each connection: a lock names the one it lives on

    @contextmanager
    def shared(self, topic: str) -> Iterator[None]:
        """Hold `topic` shared, waiting while another process holds it exclusively."""
        key = topic_key(topic)
        deadline = time.monotonic() + self._wait_s
        while (generation := self._take("pg_try_advisory_lock_shared", key)) is None:
            if time.monotonic() >= deadline:
                raise StoreUnavailable(f"{topic} stayed locked by another process")
            time.sleep(self._poll_s)
        try:
            yield
        finally:
            self._release("pg_advisory_unlock_shared", key, generation)

    @contextmanager
    def exclusive(self, topic: str) -> Iterator[bool]:
        """Try to hold `topic` alone: whether this process got it (it does not wait)."""
        key = topic_key(topic)
        generation = self._take("pg_try_advisory_lock", key)
        try:
            yield generation is not None
        finally:
            if generation is not None:
                self._release("pg_advisory_unlock", key, generation)

    def _take(self, function: str, key: int) -> int | None:
        """The connection's generation if `function` granted the lock, else None."""
        with self._mutex:
            try:
                if self._conn is None:
                    self._conn = self._db.engine.connect().execution_options(
                        isolation_level="AUTOCOMMIT"
                    )
                    self._generation += 1
                granted = self._conn.scalar(sa.text(f"SELECT {function}(:key)"), {"key": key})
            except SQLAlchemyError as exc:
                self._lose()
                raise StoreUnavailable(f"cannot take a lock: {reason(exc)}") from exc
            if granted:
                self._held += 1
                return self._generation
            self._give_back_if_idle()
            return None

    def _release(self, function: str, key: int, generation: int) -> None:
        with self._mutex:
            if generation != self._generation or self._conn is None:
                return  # that connection is gone, and its locks with it
            try:
                self._conn.scalar(sa.text(f"SELECT {function}(:key)"), {"key": key})
            except SQLAlchemyError:
                self._lose()  # closed: PostgreSQL releases what it held
                return
            self._held -= 1
            self._give_back_if_idle()

    def _give_back_if_idle(self) -> None:
        if self._held == 0 and self._conn is not None:
            self._conn.close()
            self._conn = None

    def _lose(self) -> None:
        if self._conn is not None:
            self._conn.invalidate()
            self._conn.close()
        self._conn = None
        self._held = 0
