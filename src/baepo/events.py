"""The in-process event bus.

Rooms publish facts ("an image was pushed"); other rooms subscribe to wake their loops early.
Events are hints, never the source of truth: the state that caused them is in the database.
Handlers run synchronously in the publisher's thread and must not block; a handler that
needs to do work schedules it (for example with `loop.call_soon_threadsafe`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImagePushed:
    """A manifest was stored in the registry (by tag, or by digest only when `tag` is None)."""

    repository: str
    tag: str | None
    digest: str
    media_type: str
    actor: str
    at: datetime


Event = ImagePushed
Handler = Callable[[Event], None]


class EventBus:
    def __init__(self) -> None:
        self._handlers: list[tuple[type[Event], Handler]] = []
        self._lock = threading.Lock()

    def subscribe(self, kind: type[Event], handler: Handler) -> Callable[[], None]:
        """Call `handler` for every event of `kind`; returns a function that unsubscribes."""
        entry = (kind, handler)
        with self._lock:
            self._handlers.append(entry)

        def unsubscribe() -> None:
            with self._lock:
                if entry in self._handlers:
                    self._handlers.remove(entry)

        return unsubscribe

    def publish(self, event: Event) -> None:
        with self._lock:
            handlers = [h for kind, h in self._handlers if isinstance(event, kind)]
        for handler in handlers:
            try:
                handler(event)
            except Exception:  # a subscriber's bug must not fail the publisher's request
                log.exception("event handler %r failed for %r", handler, event)
