"""ACME http-01 challenges: where an issuer puts them and the HTTP server that answers them.

An ACME server proves control of a name by fetching

    http://<name>/.well-known/acme-challenge/<token>   →  200, body: the key authorization

HAProxy's HTTP frontend forwards that path to `RouterSettings.acme_challenge_address`, which is
where a `ChallengeResponder` listens (a thread running `http.server` on a loopback address).
Everything else it answers with 404. Tokens live only in memory, for the length of one order.
"""

from __future__ import annotations

import logging
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Protocol

log = logging.getLogger(__name__)

CHALLENGE_PATH = "/.well-known/acme-challenge/"
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")  # base64url, as RFC 8555 §8.3 requires


class ChallengeStore(Protocol):
    """Where an issuer publishes the key authorizations of the challenges it is answering."""

    def add(self, token: str, key_authorization: str) -> None: ...

    def remove(self, token: str) -> None: ...


class ChallengeResponder:
    """A tiny HTTP server answering http-01 challenges, started and stopped by its owner.

    `port=0` picks a free port; `address` then tells which (give it to `RouterSettings`).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.requests = 0  # challenge fetches answered with 200, for tests and diagnostics

    # --- the store ----------------------------------------------------------------------

    def add(self, token: str, key_authorization: str) -> None:
        if not _TOKEN.fullmatch(token):
            raise ValueError(f"not an ACME token: {token!r}")
        with self._lock:
            self._tokens[token] = key_authorization

    def remove(self, token: str) -> None:
        with self._lock:
            self._tokens.pop(token, None)

    def answer(self, path: str) -> str | None:
        """The body for a request path, or None for 404 (pure lookup; no I/O)."""
        if not path.startswith(CHALLENGE_PATH):
            return None
        token = path[len(CHALLENGE_PATH) :].split("?", 1)[0]
        with self._lock:
            return self._tokens.get(token)

    # --- the server ---------------------------------------------------------------------

    @property
    def address(self) -> str:
        """`host:port` the responder listens on (the port is known once started)."""
        if self._server is None:
            return f"{self._host}:{self._port}"
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def start(self) -> None:
        if self._server is not None:
            return
        responder = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "baepo-acme"

            def do_GET(self) -> None:
                body = responder.answer(self.path)
                if body is None:
                    self._send(404, b"not found\n")
                    return
                with responder._lock:
                    responder.requests += 1
                self._send(200, body.encode())

            def do_HEAD(self) -> None:
                self.do_GET()

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("acme challenge responder: " + format, *args)

        self._server = ThreadingHTTPServer((self._host, self._port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="acme-challenges",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(5)

    def __enter__(self) -> ChallengeResponder:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
