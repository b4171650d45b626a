"""Baepo's HTTP API as the console calls it: no private back doors.

The console runs in the app it is mounted in, and calls that app's `/api/v1` in the same process,
as an ASGI request: a page's call goes through the API's own routing, authentication, rights,
validation and error mapping, as one from the CLI does, with the session's API token as its
bearer and the browser's address as its client (so the API's throttling of failed sign-ins
counts each browser, not the console). The console imports nothing of Baepo's rooms; what it
shows and may do is what the API answers.

The call is made here on the standard library, as httpx's ASGI transport would make it: httpx
is the CLI's, and would bring rich and pygments into the server (see tests/test_server.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, unquote

import anyio
from starlette.types import ASGIApp, Message, Receive

from baepo.console.errors import ApiRefused

log = logging.getLogger(__name__)

STREAM_CHUNKS = 16
"""Chunks of a streamed answer read from the API but not yet relayed, at most."""
JSON = b"application/json"
CLOSE_S = 2.0
"""How long a closed stream's API request may take to end before it is cancelled."""


def segment(value: str) -> str:
    """`value` as one path segment of an API URL."""
    return quote(value, safe="")


class Api:
    def __init__(
        self,
        app: ASGIApp,
        *,
        scheme: str,
        host: str,
        client: tuple[str, int],
        token: str | None = None,
        state: dict[str, Any] | None = None,
    ) -> None:
        """`state` is the page's request's (the server's, e.g. that it is stopping)."""
        self._app = app
        self._scheme = scheme
        self._client = client
        self._state = state or {}
        self._headers = [(b"host", host.encode("latin-1"))]
        if token:
            self._headers.append((b"authorization", f"Bearer {token}".encode("latin-1")))

    async def get(self, path: str) -> Any:
        return await self.call("GET", path)

    async def post(self, path: str, body: object | None = None) -> Any:
        return await self.call("POST", path, body)

    async def delete(self, path: str) -> Any:
        return await self.call("DELETE", path)

    async def patch(self, path: str, body: object) -> Any:
        return await self.call("PATCH", path, body)

    async def call(self, method: str, path: str, body: object | None = None) -> Any:
        """The answer's JSON (None when it has none) to `method /api/v1<path>` with `body` as
        JSON; `ApiRefused` for an error."""
        answer = await self.read(method, path, body)
        return json.loads(answer) if answer else None

    async def text(self, path: str) -> str:
        """The answer to `GET /api/v1<path>` as text (a run's log); `ApiRefused` for an error."""
        return (await self.read("GET", path, accept=b"text/plain")).decode(errors="replace")

    async def read(
        self, method: str, path: str, body: object | None = None, accept: bytes = JSON
    ) -> bytes:
        """The answer's body; `ApiRefused` for an error."""
        payload = b"" if body is None else json.dumps(body).encode()
        headers: list[tuple[bytes, bytes]] = []
        if body is not None:
            headers += [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ]
        status, answer = await _exchange(
            self._app, self._scope(method, path, headers, accept), payload
        )
        if status >= 400:
            raise refusal(status, answer)
        return answer

    async def stream(self, path: str, last_event_id: str = "") -> Stream:
        """`GET /api/v1<path>` as Server-Sent Events, its body read as it comes (see `Stream`);
        `ApiRefused` for an error. `last_event_id` is what a reconnecting browser sent."""
        headers = [(b"last-event-id", last_event_id.encode("latin-1"))] if last_event_id else []
        scope = self._scope("GET", path, headers, accept=b"text/event-stream")
        return await Stream.open(self._app, scope)

    def _scope(
        self, method: str, path: str, headers: list[tuple[bytes, bytes]], accept: bytes
    ) -> dict[str, Any]:
        """The ASGI scope of `method /api/v1<path>` as this client (its token, its host)."""
        raw_path, _, query = f"/api/v1{path}".partition("?")
        return {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": self._scheme,
            "path": unquote(raw_path),
            "raw_path": raw_path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [*self._headers, (b"accept", accept), *headers],
            "client": self._client,
            "server": None,
            "state": dict(self._state),
        }


def requester(payload: bytes, leaves: asyncio.Event) -> Receive:
    """A request's ASGI `receive`: `payload` as its body, then a client that stays until
    `leaves` is set."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": payload, "more_body": False}
        await leaves.wait()
        return {"type": "http.disconnect"}

    return receive


async def _exchange(app: ASGIApp, scope: dict[str, Any], payload: bytes) -> tuple[int, bytes]:
    """One request to `app`: its status and body."""
    status = 0
    body = bytearray()
    done = asyncio.Event()
    receive = requester(payload, done)  # the client stays until the answer is complete

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))
            if not message.get("more_body", False):
                done.set()

    try:
        await app(scope, receive, send)
    except Exception:
        # The API answered 500 (its error handler ran) and re-raised, as Starlette does for
        # a server to log: logged here, since no server sees it.
        log.exception("the API failed on %s %s", scope["method"], scope["path"])
        if not status:
            return 500, b""
    finally:
        done.set()
    return status, bytes(body)


class Stream:
    """An answer of the API read as it comes (a followed log), for the console to relay.

    The API's app runs in a task of its own and hands over its body chunk by chunk: at most
    `STREAM_CHUNKS` wait to be read, so an API stream whose reader is slow (a browser on a slow
    link) waits for it rather than piling up in memory. `close()` ends it: the API's request
    sees its client go away (`http.disconnect`, as from a server) and its stream ends as it
    does then (a followed log's follower closed); the task is cancelled if it still runs
    after `CLOSE_S`.
    """

    def __init__(
        self,
        task: asyncio.Task[None],
        chunks: asyncio.Queue[Message | None],
        gone: asyncio.Event,
    ) -> None:
        self._task = task
        self._chunks = chunks
        self._gone = gone

    @classmethod
    async def open(cls, app: ASGIApp, scope: dict[str, Any]) -> Stream:
        """The stream, once the API answered 2xx; `ApiRefused` (and closed) otherwise."""
        chunks: asyncio.Queue[Message | None] = asyncio.Queue(STREAM_CHUNKS)
        gone = asyncio.Event()
        receive = requester(b"", gone)

        async def serve() -> None:
            try:
                await app(scope, receive, chunks.put)
            except Exception:
                log.exception("the API failed on %s %s", scope["method"], scope["path"])
            finally:
                if not gone.is_set():  # else nobody reads: the queue may be full
                    await chunks.put(None)

        stream = cls(asyncio.create_task(serve(), name="console-stream"), chunks, gone)
        try:
            start = await chunks.get()
            status = start["status"] if start else 500
            if status >= 400:
                raise refusal(status, b"".join([c async for c in stream.chunks()]))
        except BaseException:
            await stream.close()
            raise
        return stream

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body's chunks as the API sends them, until it ends."""
        while (message := await self._chunks.get()) is not None:
            if message["type"] != "http.response.body":
                continue
            if chunk := message.get("body", b""):
                yield chunk
            if not message.get("more_body", False):
                return

    async def close(self) -> None:
        """End the API's request: as a client that went away, cancelled if it lingers."""
        self._gone.set()
        # Shielded: closing is what a relay does when it is cancelled (its browser left, or
        # the server stops), and anyio cancels every later wait of a cancelled task too.
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(CLOSE_S):
                await asyncio.wait({self._task})
            if not self._task.done():
                self._task.cancel()
                with anyio.move_on_after(CLOSE_S):
                    await asyncio.wait({self._task})


def refusal(status: int, answer: bytes) -> ApiRefused:
    """The API's error answer (`{"error": {"code", "message", "fields"}}`) as an exception."""
    try:
        document = json.loads(answer)
    except ValueError:
        document = None
    error = document.get("error") if isinstance(document, dict) else None
    if not isinstance(error, dict):
        return ApiRefused(status, "HTTP_ERROR", f"the API answered {status}")
    fields = [
        (str(f.get("field", "")), str(f.get("message", "")))
        for f in error.get("fields") or ()
        if isinstance(f, dict)
    ]
    return ApiRefused(
        status,
        str(error.get("code", "HTTP_ERROR")),
        str(error.get("message", f"the API answered {status}")),
        fields,
    )
