"""`RouterSupervisor`: keeps the data plane running between the changes Baepo makes to it.

HAProxy runs in its own session so that it outlives a restart of Baepo, which also means
nobody is told when it dies. The supervisor is a thread that asks the router to `heal()`
every `interval` seconds: a look at the master's pid, and, when it is gone, a restart on
the routing table and certificates the router carries (`HAProxyRouter.heal`). It works the
same for an HAProxy this Baepo started and for one it adopted from its predecessor.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from baepo.router.errors import RouterError

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 0.25


class Healable(Protocol):
    def heal(self) -> bool:
        """Start the data plane again if it died; whether it runs now."""
        ...


class RouterSupervisor:
    def __init__(self, router: Healable, interval: float = DEFAULT_INTERVAL_S) -> None:
        self._router = router
        self._interval = interval
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="baepo-router-supervisor")
        self._thread.daemon = True  # never holds the process up; stop() is the clean way
        self._thread.start()

    def stop(self, timeout: float = 20.0) -> None:
        """Stop watching (after a restart under way, if any); HAProxy keeps running."""
        thread, self._thread = self._thread, None
        self._stopping.set()
        if thread is not None:
            thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            try:
                self._router.heal()
            except RouterError as exc:  # heal() logs its own outage; this is a bug net
                log.warning("router supervision: %s", exc)
            except Exception:
                log.exception("router supervision failed; still watching")
