"""Bounds on the connections to Baepo's own port (the registry and the API).

In front of services the router has its own timeouts and limits; the loopback port that
uvicorn serves needs the same, or 20,000 clients sending half a request each use up Baepo's
file descriptors and the control loop can no longer talk to the engine or the router:

- A client has `header_s` seconds from connecting (or from the first byte of its next request
  on a kept-alive connection) to send a request's headers, then gets 408 and is closed.
- While it sends a body, `body_idle_s` seconds without a byte close it (not while Baepo itself
  has paused reading: that wait is Baepo's, not the client's).
- Beyond `max_connections` open connections a new one gets 503 at once and is closed, leaving
  descriptors for the database, the blobs and the engine.

`raise_descriptor_limit()` lifts the soft limit on open files to the hard one at start.
"""

from __future__ import annotations

import asyncio
import json
import resource
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


@dataclass(frozen=True)
class Limits:
    max_connections: int
    header_s: float
    body_idle_s: float


def raise_descriptor_limit() -> int:
    """Lift the soft limit on open files to the hard limit; returns the limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return soft


def default_max_connections(descriptors: int) -> int:
    """Connections may use at most half the descriptors: the rest are for the work itself."""
    return max(64, min(16_384, descriptors // 2))


def _plain(status: bytes, code: str, message: str) -> bytes:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return (
        b"HTTP/1.1 " + status + b"\r\n"
        b"content-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"connection: close\r\n\r\n" + body
    )


TOO_MANY = _plain(b"503 Service Unavailable", "TOO_MANY_CONNECTIONS", "too many connections")
TOO_SLOW = _plain(b"408 Request Timeout", "REQUEST_TIMEOUT", "request headers took too long")


def bounded_protocol(limits: Limits) -> type[HttpToolsProtocol]:
    """uvicorn's HTTP/1.1 protocol, bounded by `limits` (pass it as `uvicorn.Config(http=...)`)."""

    class Bounded(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._deadline: asyncio.TimerHandle | None = None
            self._in_body = False

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # uvicorn narrows asyncio's BaseTransport the same way
            super().connection_made(transport)
            if len(self.connections) > limits.max_connections:
                transport.write(TOO_MANY)
                transport.close()
                return
            self._arm(limits.header_s, self._headers_too_slow)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._in_body:
                self._arm(limits.body_idle_s, self._body_stalled)
            super().data_received(data)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._deadline is None:  # the next request on a kept-alive connection
                self._arm(limits.header_s, self._headers_too_slow)

        def on_headers_complete(self) -> None:
            self._in_body = True
            self._arm(limits.body_idle_s, self._body_stalled)
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._in_body = False
            self._disarm()
            super().on_message_complete()

        def _arm(self, seconds: float, then: Any) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(seconds, then)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _headers_too_slow(self) -> None:
            self._deadline = None
            if not self.transport.is_closing():
                self.transport.write(TOO_SLOW)
                self.transport.close()

        def _body_stalled(self) -> None:
            self._deadline = None
            if self.flow.read_paused:  # Baepo is not reading: not the client's delay
                self._arm(limits.body_idle_s, self._body_stalled)
            elif not self.transport.is_closing():
                self.transport.close()

    return Bounded
