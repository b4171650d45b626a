"""A small Docker Engine API client on the standard library, for `DockerEngine`.

It replaces the docker SDK (which brings requests, urllib3 and charset_normalizer into the
server for a dozen calls) and speaks the API as the SDK did with `version=None`:

    address          unix:///path (or unix://path), tcp://host:port, http://host:port,
                     https://host:port (verified against the system's CAs)
    API version      asked once, unversioned: GET /version → its "ApiVersion"; every call then
                     goes to /v<ApiVersion>/… (dockerd 20.10 and Podman 4.3's compatible API
                     answer 1.41; Podman's own endpoints are reached as /v1.41/libpod/…)
    connections      one per call, closed after it (`Connection: close`): nothing is shared
                     between threads but the learnt version, so any thread may call, and a
                     hung engine holds up each caller for its own timeout only
    timeouts         `timeout_s` bounds the connect and every read, so a hung engine raises
                     `TransportError`; a stream may lift it once its answer has begun (events,
                     idle for as long as nothing happens)
    uploads          a body given as chunks of bytes (a build's context) goes chunked, read from
                     its iterator while it is sent; what the iterator raises ends the call
    cancelling       a stream opened with an event ends as if closed once the event is set,
                     from its connect on: the socket is shut down (the engine sees the client
                     go and stops the work, a build), and the call raises `TransportError` or
                     the stream ends
    answers          a status >= 400 raises `ResponseError` with the engine's JSON "message"
                     (or its body's text); no answer, a timeout, a broken or unreadable one
                     raises `TransportError`. Chunked bodies and `Connection: close` are
                     http.client's.

`DockerEngine` maps both exceptions to the room's errors (engine_api's `_boundary`). Also here,
because they are the API's wire formats: the 8-byte frame headers of a container's logs
(`demultiplex`, and `FrameReader` as they arrive) and streams of JSON messages
(`MessageStream`, pulls and events) over an answer read as it arrives (`ChunkStream`), and
its timestamps (`timestamp`).
"""

from __future__ import annotations

import codecs
import contextlib
import http.client
import json
import re
import socket
import struct
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import quote, urlencode, urlsplit

Query = Mapping[str, str | int | bool | None]

# A stream that holds more than this without one whole JSON message is not the engine's.
_MAX_MESSAGE = 4 * 1024 * 1024
_READ_SIZE = 64 * 1024
_FRAME = struct.Struct(">BxxxL")
_DECODER = json.JSONDecoder()
_FRACTION = re.compile(r"\.\d+")


class TransportError(Exception):
    """No usable answer: cannot connect, timed out, hung up, or not the Engine API's HTTP."""


class ResponseError(Exception):
    """The engine answered with an error status; `message` is its own explanation."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def endpoint(template: str, *args: str) -> str:
    """`template` with `args` quoted into its `{}`s, as the SDK quoted them (`/` and `:` kept,
    so an image reference reads `/images/localhost:5000/app%40sha256:…/json`)."""
    return template.format(*(quote(arg, safe="/:") for arg in args))


def registry_auth(credentials: Mapping[str, str]) -> str:
    """The X-Registry-Auth header: base64url of the JSON credentials; `{}` is anonymous."""
    import base64

    return base64.urlsafe_b64encode(json.dumps(dict(credentials)).encode("ascii")).decode("ascii")


def logs_query(
    tail: int | None,
    *,
    timestamps: bool = False,
    follow: bool = False,
    since: datetime | None = None,
) -> Query:
    """The query of a container's or a service's logs: both streams, the last `tail` lines
    (None: all), the engine's timestamps before each, lines written at or after `since`."""
    query: dict[str, str | int | bool | None] = {
        "stderr": 1,
        "stdout": 1,
        "timestamps": 1 if timestamps else 0,
        "follow": 1 if follow else 0,
        "tail": "all" if tail is None else max(0, tail),
    }
    if since is not None:
        query["since"] = unix_time(since)
    return query


def unix_time(at: datetime) -> str:
    """The engines' `since`: seconds since the epoch with nanoseconds ("1733131347.123456000")."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    delta = at - datetime(1970, 1, 1, tzinfo=UTC)
    seconds = delta.days * 86400 + delta.seconds
    return f"{seconds}.{delta.microseconds * 1000:09d}"


def demultiplex(data: bytes) -> bytes:
    """The payloads of a non-TTY container's log stream, in order, without their headers.

    Each frame is an 8-byte header (stream: 0 stdin, 1 stdout, 2 stderr; 3 bytes of zeros;
    big-endian length) and that many bytes; stdout and stderr come back interleaved as
    written. A truncated last frame keeps what arrived of it.
    """
    out = bytearray()
    at = 0
    while len(data) - at >= _FRAME.size:
        _, length = _FRAME.unpack_from(data, at)
        at += _FRAME.size
        out += data[at : at + length]
        at += length
    return bytes(out)


def timestamp(value: object) -> datetime | None:
    """Engine timestamps have nanoseconds (`…:05.123456789Z`); zero time means never."""
    if not isinstance(value, str) or not value or value.startswith("0001-01-01"):
        return None
    # Python parses at most microseconds: cut the fraction to six digits.
    text = _FRACTION.sub(lambda m: m.group(0)[:7], value.replace("Z", "+00:00"))
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class Upload:
    """A request body sent as it is made: `chunks` are read while they are sent."""

    content_type: str
    chunks: Iterable[bytes]


@dataclass(frozen=True)
class _Address:
    scheme: str  # "unix", "http" or "https"
    host: str  # the socket path for "unix"
    port: int
    prefix: str  # a path the engine is served under, without a trailing "/"

    def connection(self, timeout_s: float | None) -> http.client.HTTPConnection:
        if self.scheme == "unix":
            return _UnixConnection(self.host, timeout_s)
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout_s)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout_s)


def parse_address(base_url: str) -> _Address:
    """DOCKER_HOST's forms, read as the SDK read them; `ValueError` for anything else."""
    text = base_url.strip()
    if not text or text == "unix://":
        return _Address("unix", "/var/run/docker.sock", 0, "")
    parts = urlsplit(text if "://" in text else f"tcp://{text}")
    scheme = {"tcp": "http", "http+unix": "unix"}.get(parts.scheme, parts.scheme)
    if scheme not in ("unix", "http", "https") or parts.query or parts.fragment:
        raise ValueError(f"not an engine address (unix://, tcp://, http(s)://): {base_url!r}")
    if scheme == "unix":
        # unix://relative/path is unix:///relative/path, for the SDK's sake.
        path = f"{parts.netloc}{parts.path}" if parts.netloc else parts.path
        if not path:
            raise ValueError(f"no socket path in {base_url!r}")
        return _Address("unix", path, 0, "")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not an engine address: {base_url!r}: {exc}") from exc
    if not port:
        raise ValueError(f"no port in the engine address {base_url!r}")
    return _Address(scheme, parts.hostname or "127.0.0.1", port, parts.path.rstrip("/"))


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout_s: float | None) -> None:
        super().__init__("localhost", timeout=timeout_s)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self._path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class EngineClient:
    """Calls to one engine. Building it touches nothing; the first call learns the version."""

    def __init__(self, base_url: str, *, timeout_s: float) -> None:
        self.base_url = base_url
        self.timeout_s = timeout_s
        self._version: Mapping[str, Any] | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        """Forget the engine's version: the next call asks again (the engine may have changed)."""
        with self._lock:
            self._version = None

    def version(self) -> Mapping[str, Any]:
        """The engine's GET /version, kept once answered (its `ApiVersion` prefixes every path).

        Not asked under the lock: threads that find it missing at once each ask, rather than
        queue behind a hung engine's timeout one after another.
        """
        with self._lock:
            if self._version is not None:
                return self._version
        answer = _decode(self._call("GET", "/version", versioned=False), "/version")
        if not isinstance(answer, dict) or not isinstance(answer.get("ApiVersion"), str):
            raise TransportError(
                f"the engine at {self.base_url} does not say its API version: {str(answer)[:200]}"
            )
        with self._lock:
            self._version = answer
        return answer

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: object = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> bytes:
        """The body of the engine's answer to `method` `path` (a JSON `body` if not None)."""
        return self._call(
            method, path, query=query, body=body, headers=headers, timeout_s=timeout_s
        )

    def json(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: object = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """The engine's JSON answer."""
        data = self._call(method, path, query=query, body=body, headers=headers)
        return _decode(data, path)

    def stream(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        headers: Mapping[str, str] | None = None,
        idle_timeout_s: float | None,
    ) -> MessageStream:
        """The engine's answer as a stream of JSON messages, once it has begun (its status
        and headers within `timeout_s`); then each read waits at most `idle_timeout_s`, or
        for as long as it takes when None."""
        return MessageStream(
            self.chunks(method, path, query=query, headers=headers, idle_timeout_s=idle_timeout_s)
        )

    def chunks(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        headers: Mapping[str, str] | None = None,
        upload: Upload | None = None,
        idle_timeout_s: float | None,
        cancel: threading.Event | None = None,
    ) -> ChunkStream:
        """The engine's answer as the bytes arrive, with the timeouts of `stream`, to a
        request with `upload` as its body if given; setting `cancel` ends it (see above)."""
        watch = None if cancel is None else _CancelWatch(cancel)
        try:
            connection, sock, response = self._open(
                method, path, query=query, headers=headers, upload=upload, watch=watch
            )
        except BaseException:
            if watch is not None:
                watch.stop()
            raise
        chunks = ChunkStream(connection, sock, response, self.base_url, watch)
        try:
            sock.settimeout(idle_timeout_s)
        except OSError as exc:
            chunks.close()
            raise self._broken(exc) from exc
        return chunks

    # -- one exchange ---------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: object = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
        versioned: bool = True,
    ) -> bytes:
        connection, _, response = self._open(
            method,
            path,
            query=query,
            body=body,
            headers=headers,
            timeout_s=timeout_s,
            versioned=versioned,
        )
        try:
            return response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise self._broken(exc) from exc
        finally:
            connection.close()

    def _open(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: object = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
        versioned: bool = True,
        upload: Upload | None = None,
        watch: _CancelWatch | None = None,
    ) -> tuple[http.client.HTTPConnection, socket.socket, http.client.HTTPResponse]:
        """Send the request; the connection, its socket (which http.client forgets once the
        answer says `Connection: close`) and the response, whose status is below 400."""
        try:
            address = parse_address(self.base_url)
        except ValueError as exc:
            raise TransportError(str(exc)) from exc
        target = address.prefix + self._versioned(path, versioned)
        pairs = {k: _query_value(v) for k, v in (query or {}).items() if v is not None}
        if pairs:
            target += "?" + urlencode(pairs)
        sent = {"User-Agent": "baepo", "Connection": "close", **(headers or {})}
        payload: bytes | Iterable[bytes] | None = None
        if upload is not None:
            payload = upload.chunks  # http.client sends an iterable chunked
            sent["Content-Type"] = upload.content_type
        elif body is not None:
            payload = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        connection = address.connection(timeout_s if timeout_s is not None else self.timeout_s)
        try:
            if watch is not None:
                connection.connect()
                watch.watch(cast(socket.socket, connection.sock))
            connection.request(method, target, body=payload, headers=sent)
            sock = cast(socket.socket, connection.sock)
            response = connection.getresponse()
            if response.status >= 400:
                raise ResponseError(response.status, _explanation(response))
        except ResponseError:
            connection.close()
            raise
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise self._broken(exc) from exc
        except BaseException:  # what an upload's chunks raised
            connection.close()
            raise
        return connection, sock, response

    def _versioned(self, path: str, versioned: bool) -> str:
        if not versioned:
            return path
        return f"/v{self.version()['ApiVersion']}{path}"

    def _broken(self, exc: BaseException) -> TransportError:
        return _transport_error(self.base_url, exc, self.timeout_s)


class ChunkStream:
    """An answer's body as the engine sends it, in chunks of bytes (a container's output).

    Iterating blocks until the next chunk; the end of the answer ends the iteration, a
    broken one raises `TransportError`. `close()` may come from any thread: it shuts the
    socket down, which wakes a blocked read, and the iteration then simply ends.
    """

    def __init__(
        self,
        connection: http.client.HTTPConnection,
        sock: socket.socket,
        response: http.client.HTTPResponse,
        base_url: str,
        watch: _CancelWatch | None = None,
    ) -> None:
        self._connection = connection
        self._response = response
        self._socket: socket.socket | None = sock
        self.base_url = base_url
        self._ended = False
        self.closed = False
        """True once `close()` was called (not when the engine ended the answer)."""
        self._reading = threading.Lock()  # held by the iterating thread while it reads
        self._watch = watch
        if watch is not None:
            watch.hand_over(self.close)

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        with self._reading:
            if self.closed or self._ended:
                self._release()
                raise StopIteration
            try:
                chunk = self._response.read1(_READ_SIZE)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                if self.closed:  # closed under us: the socket was shut down on purpose
                    self._release()
                    raise StopIteration from None
                timeout = self._socket.gettimeout() if self._socket else None
                self._release()
                self._ended = True
                raise _transport_error(self.base_url, exc, timeout) from exc
            if self.closed or not chunk:
                self._release()
                self._ended = True
                raise StopIteration
            return chunk

    def close(self) -> None:
        self.closed = True
        sock = self._socket
        if sock is not None:
            # Already shut down, or the engine hung up first: either way, down.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._reading.acquire(blocking=False):  # nobody is reading: release it here
            try:
                self._release()
            finally:
                self._reading.release()

    def __enter__(self) -> ChunkStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _release(self) -> None:
        if self._watch is not None:
            self._watch.stop()
        self._response.close()
        self._connection.close()
        self._socket = None


class _CancelWatch:
    """A thread that waits for `event`, then shuts the watched socket down (before the answer
    began) or closes the stream (after): until `stop()`, checking 20 times a second."""

    def __init__(self, event: threading.Event) -> None:
        self._event = event
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._socket: socket.socket | None = None
        self._close: Callable[[], None] | None = None

    def watch(self, sock: socket.socket) -> None:
        self._socket = sock
        threading.Thread(target=self._run, name="engine-cancel", daemon=True).start()

    def hand_over(self, close: Callable[[], None]) -> None:
        with self._lock:
            self._close = close

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        while not self._stopped.is_set():
            if not self._event.wait(0.05):
                continue
            with self._lock:
                if self._stopped.is_set():
                    return
                close, sock = self._close, self._socket
            if close is not None:
                close()
            elif sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            return


class MessageStream:
    """JSON messages as the engine writes them (one after another, usually a line each), read
    from a `ChunkStream`: pulls and events.

    Iterating blocks until the next message; the end of the answer ends the iteration (a
    `TransportError` if it ends mid-message), a broken one raises `TransportError`; `close()`
    from any thread ends the iteration at once.
    """

    def __init__(self, chunks: ChunkStream) -> None:
        self._chunks = chunks
        self._base_url = chunks.base_url
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        while True:
            if self._chunks.closed:
                raise StopIteration
            message = self._next_in_buffer()
            if message is not _NOTHING:
                return message
            try:
                chunk = next(self._chunks)
            except StopIteration:
                leftover, self._buffer = self._buffer.strip(), ""
                if leftover and not self._chunks.closed:
                    raise TransportError(
                        f"the engine at {self._base_url} ended a stream mid-message: "
                        f"{leftover[:200]!r}"
                    ) from None
                raise
            self._buffer += self._text.decode(chunk)
            if len(self._buffer) > _MAX_MESSAGE:
                size, self._buffer = len(self._buffer), ""
                self._chunks.close()
                raise TransportError(
                    f"the engine at {self._base_url} sent {size} bytes that are not a JSON message"
                )

    def close(self) -> None:
        self._chunks.close()

    def __enter__(self) -> MessageStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _next_in_buffer(self) -> Any:
        text = self._buffer.lstrip()
        if not text:
            self._buffer = ""
            return _NOTHING
        try:
            message, end = _DECODER.raw_decode(text)
        except ValueError:
            self._buffer = text  # an incomplete message: read on
            return _NOTHING
        self._buffer = text[end:]
        return message


class FrameReader:
    """`demultiplex`, as the bytes arrive: `feed` a chunk, get the frames it completed as
    (stream, payload) pairs (1 stdout, 2 stderr), in order. A frame announced larger than
    `max_frame` is a `TransportError`: no engine writes one (it splits lines at 16 KiB)."""

    def __init__(self, max_frame: int = _MAX_MESSAGE) -> None:
        self._buffer = bytearray()
        self._max_frame = max_frame

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buffer += data
        frames: list[tuple[int, bytes]] = []
        at = 0
        while len(self._buffer) - at >= _FRAME.size:
            stream, length = _FRAME.unpack_from(self._buffer, at)
            if length > self._max_frame:
                raise TransportError(f"a log frame of {length} bytes: not the Engine API's")
            if len(self._buffer) - at - _FRAME.size < length:
                break
            start = at + _FRAME.size
            frames.append((stream, bytes(self._buffer[start : start + length])))
            at = start + length
        del self._buffer[:at]
        return frames


_NOTHING: Any = object()


def _query_value(value: str | int | bool) -> str:
    # The SDK sent True/False as requests writes them; engines read both spellings.
    return str(value)


def _decode(data: bytes, path: str) -> Any:
    try:
        return json.loads(data) if data.strip() else None
    except ValueError as exc:
        raise TransportError(f"the engine's answer to {path} is not JSON: {data[:200]!r}") from exc


def _explanation(response: http.client.HTTPResponse) -> str:
    """The engine's "message" ({"message": "…"}), else its body's text, else the reason."""
    try:
        data = response.read()
    except (OSError, http.client.HTTPException):
        data = b""
    text = data.decode("utf-8", errors="replace").strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and parsed.get("message"):
        return str(parsed["message"]).strip()
    return text or f"{response.status} {response.reason}"


def _transport_error(base_url: str, exc: BaseException, timeout_s: float | None) -> TransportError:
    if isinstance(exc, TimeoutError) and timeout_s is not None:
        return TransportError(f"the engine at {base_url} did not answer within {timeout_s:g} s")
    reason = str(exc) or type(exc).__name__
    return TransportError(f"the engine at {base_url} does not answer: {reason}")
