"""The registry's database plumbing: short transactions, foreign errors mapped once.

`Records` wraps `baepo.store.Database` for the registry: `read()` (an ORM session), `conn()`
(a plain connection, for the hot read paths), `write(work)` (one transaction, retried when a
concurrent insert won a race), and the get-or-create helpers every write needs. Every
SQLAlchemy error leaves here as `RegistryUnavailable`; `storage_call` does the same for the
StorageDriver. `affected` reads an UPDATE's or DELETE's row count. `BlobGuard` orders upload
commits against the garbage collector's sweep.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from baepo.clock import Clock
from baepo.registry import rows
from baepo.registry.errors import NameUnknown, RegistryUnavailable
from baepo.storage import StorageError
from baepo.store import Database, lost_a_race
from baepo.store.batches import WriteBatcher

T = TypeVar("T")


def storage_call(call: Callable[[], T]) -> T:
    """Run a driver call; a storage failure becomes RegistryUnavailable."""
    try:
        return call()
    except StorageError as exc:
        raise RegistryUnavailable(f"storage error: {exc}") from exc


class BlobGuard:
    """A readers-writer lock: many commits at once (`shared`), or one sweep (`exclusive`)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._writer:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._readers:
                self._cond.wait()
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class Records:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        # Every registry write goes through one thread: those arriving together share a
        # commit (a push of 32 manifests at once is a few fsyncs, not 32; see store/batches.py).
        self._writes = WriteBatcher(db, "baepo-registry-writes")

    # -- plumbing --------------------------------------------------------------------------
    @contextmanager
    def read(self) -> Iterator[Session]:
        try:
            with self.db.session() as s:
                yield s
        except SQLAlchemyError as exc:
            raise RegistryUnavailable(f"database error: {exc.__class__.__name__}") from exc

    @contextmanager
    def conn(self) -> Iterator[sa.Connection]:
        """A plain connection for the hot read paths (a fraction of an ORM session's cost)."""
        try:
            with self.db.engine.connect() as c:
                yield c
        except SQLAlchemyError as exc:
            raise RegistryUnavailable(f"database error: {exc.__class__.__name__}") from exc

    def write(self, work: Callable[[Session], T]) -> T:
        """Run `work` in a transaction (its own savepoint of a shared one), retrying when a
        concurrent insert won a race (or, on PostgreSQL, another process's write deadlocked
        with it)."""
        for attempt in range(4):
            try:
                return self._writes.run(work)
            except SQLAlchemyError as exc:
                if not isinstance(exc, IntegrityError) and not lost_a_race(exc):
                    raise RegistryUnavailable(f"database error: {exc.__class__.__name__}") from exc
                if attempt == 3:
                    raise RegistryUnavailable("database conflict, try again") from exc
        raise AssertionError("unreachable")

    def repo_id(self, s: Session, name: str, *, create: bool = False) -> int:
        conn = s.connection()
        if create:
            return rows.repository(conn, name, self.clock.now())
        found = rows.repository_id(conn, name)
        if found is None:
            raise NameUnknown("repository name not known to registry", {"name": name})
        return found

    def upsert_blob(self, s: Session, digest: str, size: int) -> None:
        rows.blob(s.connection(), digest, size, self.clock.now())

    def link(self, s: Session, repo_id: int, digest: str) -> None:
        rows.link(s.connection(), repo_id, digest)
