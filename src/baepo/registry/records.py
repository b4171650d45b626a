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
from baepo.store import Database, StoreUnavailable, lost_a_race
from baepo.store.batches import WriteBatcher
from baepo.store.locks import SessionLocks

T = TypeVar("T")


def storage_call(call: Callable[[], T]) -> T:
    """Run a driver call; a storage failure becomes RegistryUnavailable."""
    try:
        return call()
    except StorageError as exc:
        raise RegistryUnavailable(f"storage error: {exc}") from exc


class BlobGuard:
    """Orders the work that makes a blob live (an upload's commit, a manifest's bytes, a
    mount: `shared`, from their check or their bytes to their rows) against the collector's
    sweep of that blob (`exclusive`, from its row to its bytes).

    Within the process, a readers-writer lock: many commits at once, or one sweep. Across the
    processes sharing a PostgreSQL database (`across`), a lock per digest: a commit waits
    while another process sweeps that blob, and a sweep that finds the blob in another
    process's commit leaves it (`exclusive` yields False), to be seen fresh at the next gc.
    """

    def __init__(self, across: SessionLocks | None = None) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._across = across

    @contextmanager
    def shared(self, digest: str) -> Iterator[None]:
        with self._cond:
            while self._writer:
                self._cond.wait()
            self._readers += 1
        try:
            if self._across is None:
                yield
            else:
                with _unavailable_as_registry(), self._across.shared(f"blob {digest}"):
                    yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def exclusive(self, digest: str) -> Iterator[bool]:
        """Whether the sweep may go on: False when another process is committing the blob."""
        with self._cond:
            while self._writer or self._readers:
                self._cond.wait()
            self._writer = True
        try:
            if self._across is None:
                yield True
            else:
                with _unavailable_as_registry(), self._across.exclusive(f"blob {digest}") as held:
                    yield held
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


@contextmanager
def _unavailable_as_registry() -> Iterator[None]:
    try:
        yield
    except StoreUnavailable as exc:
        raise RegistryUnavailable(str(exc)) from exc


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
