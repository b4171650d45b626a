"""A thread pool whose threads never hold the process open.

The server's blocking calls (engine, router, database, files) run in the event loop's default
executor. `concurrent.futures.ThreadPoolExecutor` joins its threads at interpreter exit, and
asyncio's shutdown waits for them without a limit: one engine call that hangs would hold a
SIGTERM for as long as the call's own timeout (a pull: minutes). Here a shutdown waits for the
work under way only until a deadline, then lets the process go; what was cut short is redone
after the next start, exactly as after a `kill -9` (state is written transactionally, files
before rows).
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

_Work = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class DaemonExecutor(ThreadPoolExecutor):
    """Up to `max_workers` daemon threads, started as work arrives; `shutdown(wait=True)`
    waits for running work until `grace_deadline` (a `time.monotonic()` value, or None for
    no limit), cancels what has not started, and returns.

    A `ThreadPoolExecutor` only by name (asyncio's loop takes no other kind as its default
    executor): `submit` and `shutdown`, the two calls asyncio and `map` make, are its own, and
    none of the base class's threads is ever started."""

    def __init__(self, max_workers: int, name: str = "worker") -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        super().__init__(max_workers=1)
        self._max_workers = max_workers
        self._name = name
        self._queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        self._numbers = itertools.count()
        self._closed = False
        self.grace_deadline: float | None = None

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new work after shutdown")
            future: Future[T] = Future()
            self._queue.put((future, fn, args, kwargs))
            if not self._idle.acquire(blocking=False) and len(self._workers) < self._max_workers:
                thread = threading.Thread(
                    target=self._work, name=f"{self._name}-{next(self._numbers)}", daemon=True
                )
                thread.start()
                self._workers.append(thread)
            return future

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, fn, args, kwargs = item
            del item
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:  # the caller's to judge, through its future
                    future.set_exception(exc)
                    del exc
                else:
                    future.set_result(result)
                    del result
            del future, fn, args, kwargs
            self._idle.release()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed = True
            threads = list(self._workers)
        # Work that has not started never will: the process is on its way out.
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[0].cancel()
        for _ in threads:
            self._queue.put(None)
        if not wait:
            return
        for thread in threads:
            timeout = None
            if self.grace_deadline is not None:
                timeout = max(0.0, self.grace_deadline - time.monotonic())
            thread.join(timeout)
        stuck = [t.name for t in threads if t.is_alive()]
        if stuck:
            log.warning(
                "leaving %d blocking calls unfinished at exit (%s): redone at the next start",
                len(stuck),
                ", ".join(stuck),
            )
