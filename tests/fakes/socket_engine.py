"""`SocketEngine`: a unix socket that answers HTTP as a test scripts it, to test the Engine
API client (`baepo.runtime.engine_http`) and `DockerEngine` at the wire.

Each connection's request is read whole (headers and a Content-Length or chunked body) and
recorded; the test's `answer(request, connection)` then writes whatever bytes it likes: a
JSON answer (`send_json`), a chunked stream (`send_chunked_head`, `send_chunk`), nothing
(`hang`: a hung engine), or a hang-up; the connection is closed once it returns.
`GET /version` answers Docker 20.10's API version unless the script answers it. `hung()`
makes an engine that accepts and never answers.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

API_VERSION = "1.41"


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def query(self) -> dict[str, str]:
        from urllib.parse import parse_qsl

        return dict(parse_qsl(self.target.partition("?")[2]))

    def json(self) -> object:
        return json.loads(self.body)


Answer = Callable[[Request, socket.socket], None]


def send_json(
    connection: socket.socket, status: int, document: object, reason: str = "Whatever"
) -> None:
    body = json.dumps(document).encode()
    connection.sendall(
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )


def send_raw(connection: socket.socket, status: int, body: bytes, reason: str = "Whatever") -> None:
    connection.sendall(
        f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
    )


def send_chunked_head(connection: socket.socket, status: int = 200) -> None:
    connection.sendall(
        f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n".encode()
    )


def send_chunk(connection: socket.socket, data: bytes) -> None:
    connection.sendall(f"{len(data):x}\r\n".encode() + data + b"\r\n")


def end_chunks(connection: socket.socket) -> None:
    connection.sendall(b"0\r\n\r\n")


def hang(connection: socket.socket) -> None:
    """Answer nothing, until the client hangs up (or the engine is closed)."""
    with contextlib.suppress(OSError):
        while connection.recv(65536):
            pass


def version_answer(request: Request, connection: socket.socket) -> bool:
    """Answer `GET /version` as dockerd 20.10 does; False for any other request."""
    if request.method == "GET" and request.path == "/version":
        send_json(connection, 200, {"ApiVersion": API_VERSION, "Version": "20.10.24"})
        return True
    return False


class SocketEngine:
    def __init__(self, path: Path, answer: Answer, *, versions: bool = True) -> None:
        self.path = path
        self.requests: list[Request] = []
        self._answer = answer
        self._versions = versions
        self._stopping = threading.Event()
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(path))
        self._server.listen(16)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def paths(self) -> list[str]:
        """The paths asked for, in order, /version included."""
        return [r.path for r in self.requests]

    def close(self) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        with self._lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
                connection.close()
        self._thread.join(timeout=5)

    def __enter__(self) -> SocketEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                self._connections.append(connection)
            threading.Thread(target=self._handle, args=(connection,), daemon=True).start()

    def _handle(self, connection: socket.socket) -> None:
        try:
            request = _read_request(connection)
            if request is None:
                return
            self.requests.append(request)
            if not (self._versions and version_answer(request, connection)):
                self._answer(request, connection)
        except OSError:
            pass  # the client went away (a test's timeout): nothing to answer
        finally:
            connection.close()


def _read_request(connection: socket.socket) -> Request | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    line, *fields = head.decode("latin-1").split("\r\n")
    method, target, _ = line.split(" ", 2)
    headers = {}
    for field in fields:
        name, _, value = field.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        return Request(method, target, headers, _read_chunked(connection, body))
    length = int(headers.get("content-length") or 0)
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            break
        body += chunk
    return Request(method, target, headers, body)


def _read_chunked(connection: socket.socket, data: bytes) -> bytes:
    """A chunked body (a build's context), decoded, from what was read so far and the rest."""
    body = b""
    while True:
        while b"\r\n" not in data:
            data += connection.recv(65536) or b"\r\n"
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        while len(data) < size + 2:
            more = connection.recv(65536)
            if not more:
                return body + data[:size]
            data += more
        if size == 0:
            return body
        body, data = body + data[:size], data[size + 2 :]


def hung(path: Path) -> SocketEngine:
    """An engine that accepts every connection, reads the request, and never answers."""

    return SocketEngine(path, lambda request, connection: hang(connection), versions=False)
