"""Tiny HTTP backends on loopback, standing in for service instances in integration tests.

`GET /` answers the backend's name; `/status/N` answers status N; `/slow?seconds=N` answers
after N seconds (signalling `started` first); an `Upgrade: websocket` request gets `101` and
an echo of what follows. A POST is answered as a GET once its body is read. A backend made
with `resets=True` resets every connection a request comes on, answering nothing (an app
closing under its requests).
"""

from __future__ import annotations

import base64
import hashlib
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

_WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Backend:
    def __init__(self, name: str, *, resets: bool = False) -> None:
        self.name = name
        self.started = threading.Event()  # set when a /slow request begins
        self.requests = 0
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, like real services

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.do_GET()

            def do_GET(self) -> None:
                backend.requests += 1
                if resets:
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.close_connection = True
                    return
                url = urlsplit(self.path)
                if self.headers.get("Upgrade", "").lower() == "websocket":
                    self._upgrade()
                    return
                if url.path.startswith("/status/"):
                    self.send_response(int(url.path.removeprefix("/status/")))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if url.path == "/slow":
                    backend.started.set()
                    time.sleep(float(parse_qs(url.query).get("seconds", ["2"])[0]))
                body = (
                    f"{backend.name} host={self.headers.get('Host')} "
                    f"proto={self.headers.get('X-Forwarded-Proto')}"
                ).encode()
                if url.path == "/forwarded-for":
                    body = f"{backend.name} {self.headers.get('X-Forwarded-For')}".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _upgrade(self) -> None:
                key = self.headers.get("Sec-WebSocket-Key", "") + _WEBSOCKET_GUID
                accept = base64.b64encode(hashlib.sha1(key.encode()).digest()).decode()
                self.send_response(101)
                self.send_header("Sec-WebSocket-Accept", accept)
                self.send_header("Upgrade", "websocket")
                self.send_header("Connection", "Upgrade")
                self.end_headers()
                self.wfile.flush()
                data = self.rfile.readline()
                self.wfile.write(b"echo:" + data)
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.address = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # HAProxy closing idle keep-alive connections is not news
