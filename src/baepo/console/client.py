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
from typing import Any
from urllib.parse import quote, unquote

from starlette.types import ASGIApp, Message

from baepo.console.errors import ApiRefused

log = logging.getLogger(__name__)


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
    ) -> None:
        self._app = app
        self._scheme = scheme
        self._client = client
        self._headers = [(b"host", host.encode("latin-1")), (b"accept", b"application/json")]
        if token:
            self._headers.append((b"authorization", f"Bearer {token}".encode("latin-1")))

    async def get(self, path: str) -> Any:
        return await self.call("GET", path)

    async def post(self, path: str, body: object | None = None) -> Any:
        return await self.call("POST", path, body)

    async def delete(self, path: str) -> Any:
        return await self.call("DELETE", path)

    async def call(self, method: str, path: str, body: object | None = None) -> Any:
        """The answer's JSON (None when it has none) to `method /api/v1<path>` with `body` as
        JSON; `ApiRefused` for an error."""
        payload = b"" if body is None else json.dumps(body).encode()
        headers = list(self._headers)
        if body is not None:
            headers += [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ]
        raw_path, _, query = f"/api/v1{path}".partition("?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": self._scheme,
            "path": unquote(raw_path),
            "raw_path": raw_path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": headers,
            "client": self._client,
            "server": None,
        }
        status, answer = await _exchange(self._app, scope, payload)
        if status >= 400:
            raise refusal(status, answer)
        return json.loads(answer) if answer else None


async def _exchange(app: ASGIApp, scope: dict[str, Any], payload: bytes) -> tuple[int, bytes]:
    """One request to `app`: its status and body."""
    status = 0
    body = bytearray()
    done = asyncio.Event()
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": payload, "more_body": False}
        await done.wait()  # the client stays until the answer is complete
        return {"type": "http.disconnect"}

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
