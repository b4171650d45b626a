"""Text holding a NUL character is refused at the API's edge: `422 INVALID_REQUEST`.

No name, password or value Baepo keeps may hold one, and PostgreSQL's text cannot: psycopg
refuses the statement, and the state database's failure would answer `503` to what is bad
input (SQLite keeps it, so the two would differ as well). A request's path and query, and every
string (key or value) of a JSON body, are checked before a route sees the request. A JSON body
is read for it (up to `CHECKED_BYTES`), then handed on as it came.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from baepo.api.errors import error_response
from baepo.store import nul_place

MUST_NOT = "must not hold a NUL character"
CHECKED_BYTES = 1024 * 1024
"""The longest body checked (the API's documents are a few KiB)."""
WEBHOOKS = "/api/v1/hooks/"
"""A provider's payload is not Baepo's text: its route keeps only a branch and a commit (a
commit message may hold any character)."""


class RefuseNul:
    """ASGI middleware: the API app's requests with a NUL in their text get a 422."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"] or b"%00" in scope["query_string"]:
            await _refuse("the path or query", (), scope, receive, send)
            return
        if not _is_json(scope) or scope["path"].startswith(WEBHOOKS):
            await self.app(scope, receive, send)
            return
        read = await _read_start(receive)
        if read is None:
            return  # the client went away before the end of its body
        messages, whole = read
        place = _nul_in_json(b"".join(m.get("body", b"") for m in messages)) if whole else None
        if place is not None:
            fields = ((place, MUST_NOT),) if place else ()
            await _refuse(place or "the body", fields, scope, receive, send)
            return
        await self.app(scope, _replay(messages, receive), send)


async def _refuse(
    where: str, fields: tuple[tuple[str, str], ...], scope: Scope, receive: Receive, send: Send
) -> None:
    answer = error_response(422, "INVALID_REQUEST", f"{where}: {MUST_NOT}", fields=fields)
    await answer(scope, receive, send)


def _is_json(scope: Scope) -> bool:
    types = [value for key, value in scope["headers"] if key == b"content-type"]
    return bool(types) and b"json" in types[0].lower()


async def _read_start(receive: Receive) -> tuple[list[Message], bool] | None:
    """The body's messages up to `CHECKED_BYTES`, and whether that is the whole body (a longer
    one goes on unchecked: a webhook's payload is read by its route, under its own limit);
    None if the client went away."""
    messages: list[Message] = []
    size = 0
    while size <= CHECKED_BYTES:
        message = await receive()
        if message["type"] != "http.request":
            return None
        messages.append(message)
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            return messages, True
    return messages, False


def _nul_in_json(body: bytes) -> str | None:
    """Where a string of the JSON document holds NUL (written `\\u0000`: a raw one is not
    JSON, which the route's parsing refuses); a body that is not JSON is the route's to refuse."""
    if b"\\u0000" not in body.lower():
        return None
    try:
        document = json.loads(body)
    except ValueError:
        return None
    return nul_place(document)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """`receive` with the messages already read given back first."""
    waiting = list(messages)

    async def replayed() -> Message:
        return waiting.pop(0) if waiting else await receive()

    return replayed
