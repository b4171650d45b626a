"""Text holding a NUL character is refused at the API's edge: `422 INVALID_REQUEST`.

No name, password or value Baepo keeps may hold one, and PostgreSQL's text cannot: psycopg
refuses the statement, and the state database's failure would answer `503` to what is bad
input (SQLite keeps it, so the two would differ as well). A request's path and query, and every
string (key or value) of a JSON body, are checked before a route sees the request. A JSON body
is read whole for it (the API's bodies are small documents), then handed on as it came.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from baepo.api.errors import error_response
from baepo.store import holds_nul


class RefuseNul:
    """ASGI middleware: the API app's requests with a NUL in their text get a 422."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"] or b"%00" in scope["query_string"]:
            await _refuse("its path or query", scope, receive, send)
            return
        if not _is_json(scope):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            return  # the client went away before the end of its body
        if _holds_nul(body):
            await _refuse("its JSON body", scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)


async def _refuse(where: str, scope: Scope, receive: Receive, send: Send) -> None:
    message = f"text may not hold a NUL character (\\u0000): one is in {where}"
    await error_response(422, "INVALID_REQUEST", message)(scope, receive, send)


def _is_json(scope: Scope) -> bool:
    types = [value for key, value in scope["headers"] if key == b"content-type"]
    return bool(types) and b"json" in types[0].lower()


async def _read_body(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _holds_nul(body: bytes) -> bool:
    """Whether a string of the JSON document holds NUL (written `\\u0000`: a raw one is not
    JSON, which the route's parsing refuses). A body that is not JSON is the route's to refuse."""
    if b"\\u0000" not in body.lower():
        return False
    try:
        document = json.loads(body)
    except ValueError:
        return False
    return holds_nul(document)


def _replay(body: bytes, receive: Receive) -> Receive:
    """`receive` with the body already read given back first, whole."""
    given = False

    async def replayed() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed
