"""Group commit: writes that arrive together share one transaction, one commit, one fsync.

SQLite has a single writer. Many threads writing at once each wait for the write lock in
SQLite's busy handler, which sleeps between tries (1, 2, 5, … up to 100 ms), and each commit
pays its own fsync (`synchronous=FULL`). A `WriteBatcher` instead runs every write given to it
on one thread: it takes whatever has queued up (at most `max_batch`), opens one transaction
(`BEGIN IMMEDIATE`: the write lock from the start, so it is never refused half-way), runs each
write in a savepoint of its own, and commits once. A write that raises rolls back its own
savepoint only, and its caller gets that exception; the others commit. A failed commit (disk
full, read-only) is every caller's error: none of the batch happened. Callers wait until the
commit: a result is never returned for a write that is not on disk.

On PostgreSQL the batch is an ordinary transaction (READ COMMITTED): writers of other
processes are not shut out, each row a write touches is locked until the commit, and sharing
the commit still saves a WAL flush per write. A write that loses a race with another process
(a unique key inserted meanwhile, a deadlock) fails in its own savepoint, like any other error.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from baepo.store.database import Database

log = logging.getLogger(__name__)

T = TypeVar("T")

_Write = tuple[Callable[[Session], Any], "Future[Any]"]


class WriteBatcher:
    def __init__(self, db: Database, name: str, max_batch: int = 64) -> None:
        self._db = db
        self._name = name
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Write] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def run(self, work: Callable[[Session], T]) -> T:
        """Run `work` in a transaction shared with the writes queued beside it; its result
        once committed, or the exception it (or the commit) raised."""
        thread = self._thread
        if thread is not None and thread.ident == threading.get_ident():
            raise RuntimeError(f"{self._name}: a write may not start another write")
        future: Future[T] = Future()
        self._queue.put((work, future))
        self._ensure_thread()
        return future.result()

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                # A daemon: at exit, writes not yet committed are as if never asked for.
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self._max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._commit(batch)
            except BaseException as exc:  # never leave a caller waiting, whatever happened
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise

    def _commit(self, batch: list[_Write]) -> None:
        outcomes: list[tuple[Future[Any], Any, BaseException | None]] = []
        try:
            with self._db.session() as s, s.begin():
                if self._db.is_sqlite:
                    s.connection().exec_driver_sql("BEGIN IMMEDIATE")
                for work, future in batch:
                    try:
                        with s.begin_nested():
                            outcomes.append((future, work(s), None))
                    except Exception as exc:
                        outcomes.append((future, None, exc))
        except Exception as exc:
            for _, future in batch:
                future.set_exception(exc)
            return
        for future, result, error in outcomes:
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)
