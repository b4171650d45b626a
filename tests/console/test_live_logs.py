"""Live logs: the console relays the API's Server-Sent Events (`relays.py`) over its
in-process client's stream (`client.Stream`). Over HTTP against the API's in-process world,
and the stream alone against small ASGI apps: bounded, and ended cleanly when its reader
goes away."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from starlette.responses import StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from baepo.console import client, relays
from baepo.console.client import Api
from baepo.console.errors import ApiRefused
from tests.api.rights_world import RightsWorld
from tests.api.test_service_logs_api import events_of
from tests.console.test_service_pages import create
from tests.console.visitor import Visitor, text


def instance_of(world: RightsWorld, name: str) -> str:
    (container,) = world.engine.list({"baepo.service": name})
    return container.id


def test_the_page_shows_the_last_lines_and_follows_the_rest(
    world: RightsWorld, alice: Visitor
) -> None:
    create(world, alice, "talker")
    instance = instance_of(world, "talker")
    world.engine.write(instance, "hello <b>there</b>")
    page = alice.get("/services/talker")
    assert 'data-follow="/services/talker/logs/live"' in page.text
    assert '<script src="/static/live.js" defer></script>' in page.text
    assert "hello &lt;b&gt;there&lt;/b&gt;" in page.text  # a line is text, never markup
    assert alice.get("/static/live.js").headers["content-type"].startswith("text/javascript")


def test_the_relay_passes_the_apis_events_on(
    world: RightsWorld, alice: Visitor, monkeypatch: pytest.MonkeyPatch
) -> None:
    create(world, alice, "relayed")
    instance = instance_of(world, "relayed")
    for line in ("first", "second"):
        world.clock.advance(1)
        world.engine.write(instance, line)
    monkeypatch.setattr(relays, "FOLLOW_S", 0.3)  # a follow that ends, for the test to read
    with alice.client.stream("GET", "/services/relayed/logs/live") as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        assert answer.headers["cache-control"] == "no-store"
        body = "".join(answer.iter_text())
    events = events_of(body)
    lines = [json.loads(data) for kind, data in events if kind == "message"]
    assert [line["text"] for line in lines] == ["first", "second"]
    assert events[-1][0] == "end"  # the browser reconnects then

    # A reconnect goes on from the last event the browser had, as the API says.
    resumed = {"Last-Event-ID": lines[-1]["at"]}
    with alice.client.stream("GET", "/services/relayed/logs/live", headers=resumed) as answer:
        body = "".join(answer.iter_text())
    assert [json.loads(d)["text"] for k, d in events_of(body) if k == "message"] == ["second"]


def test_no_relay_of_another_users_log(world: RightsWorld, alice: Visitor, bob: Visitor) -> None:
    create(world, alice, "secretive")
    answer = bob.get("/services/secretive/logs/live")
    assert answer.status_code == 404 and "Not found" in text(answer)
    assert not answer.headers["content-type"].startswith("text/event-stream")
    anonymous = Visitor(world.client.app).get("/services/secretive/logs/live")
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/sign-in")


class Endless:
    """An API stream (Starlette's, as the API's are) that sends a chunk whenever it may, and
    notes when it has ended."""

    def __init__(self) -> None:
        self.sent = 0
        self.ended = False

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            yield b"x"
            self.sent += 1

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await StreamingResponse(self.chunks())(scope, receive, send)
        self.ended = True  # it heard its client leave, and ended as for a server's


class Deaf:
    """An API stream that never listens for its client leaving."""

    def __init__(self) -> None:
        self.cancelled = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"x", "more_body": True})
        except asyncio.CancelledError:
            self.cancelled = True
            raise


def api_of(app: ASGIApp) -> Api:
    return Api(app, scheme="http", host="test", client=("127.0.0.1", 1))


@pytest.mark.anyio
async def test_a_stream_waits_for_its_reader_and_ends_when_closed() -> None:
    app = Endless()
    stream = await api_of(app).stream("/follow")
    chunks = stream.chunks()
    assert await anext(chunks) == b"x"
    for _ in range(50):
        await asyncio.sleep(0)  # the app sends what it may
    assert app.sent <= client.STREAM_CHUNKS + 2  # bounded: it waits for the reader
    await stream.close()
    assert app.ended


@pytest.mark.anyio
async def test_a_stream_that_ignores_its_client_leaving_is_cancelled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(client, "CLOSE_S", 0.05)
    app = Deaf()
    stream = await api_of(app).stream("/follow")
    await stream.close()
    assert app.cancelled


@pytest.mark.anyio
async def test_a_refused_stream_is_the_apis_error() -> None:
    async def refuses(scope: Scope, receive: Receive, send: Send) -> None:
        body = json.dumps({"error": {"code": "SERVICE_NOT_FOUND", "message": "no such"}})
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": body.encode()})

    with pytest.raises(ApiRefused) as refused:
        await api_of(refuses).stream("/follow")
    assert refused.value.status == 404 and refused.value.message == "no such"
