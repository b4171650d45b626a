"""`GET /api/v1/services/{name}/logs`: JSON, the filters, and Server-Sent Events, in process
(the real API app over the control room's fakes)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import anyio
import anyio.to_thread
import pytest
from starlette.requests import Request

from baepo.api.streams import follow_events
from baepo.control import LogEntry, LogFollower, SpecChange
from tests.api.rights_world import REGISTRY, RightsWorld, basic, build

S = "/api/v1/services"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RightsWorld]:
    for world in build(tmp_path_factory.mktemp("logs")):
        world.headers["alice"] = basic("alice")
        world.headers["bob"] = basic("bob")
        _, op = world.services.create(
            SpecChange({"name": "app", "image": f"{REGISTRY}/alice/app:1"}), owner="alice"
        )
        assert world.settle(op.id) == "SUCCEEDED"
        (container,) = world.engine.list({"baepo.service": "app"})
        world.clock.advance(1)
        world.engine.write(container.id, "hello from app")
        world.clock.advance(1)
        world.engine.write(container.id, "and an error", stream="stderr")
        yield world


def events_of(text: str) -> list[tuple[str, str]]:
    """(event, data) of each Server-Sent Event, comments left out."""
    found = []
    for block in text.split("\n\n"):
        fields = [line.partition(": ") for line in block.splitlines() if not line.startswith(":")]
        named = {name: value for name, _, value in fields}
        if "data" in named:
            found.append((named.get("event", "message"), named["data"]))
    return found


def test_the_lines_as_json(world: RightsWorld) -> None:
    r = world.request("alice", "GET", f"{S}/app/logs")
    assert r.status_code == 200, r.text
    lines = r.json()
    assert [(e["stream"], e["text"]) for e in lines] == [
        ("stdout", "hello from app"),
        ("stderr", "and an error"),
    ]
    assert {e["source"] for e in lines} == {"application"}
    assert lines[0]["instance"].startswith("app-1-") and lines[0]["revision"] == 1

    limited = world.request("alice", "GET", f"{S}/app/logs?limit=1").json()
    assert [e["text"] for e in limited] == ["and an error"]
    other = world.request("alice", "GET", f"{S}/app/logs?instance=app-1-000000").json()
    assert other == []
    assert world.request("alice", "GET", f"{S}/app/logs?revision=2").json() == []
    assert world.request("alice", "GET", f"{S}/app/logs?since=1h").json() == lines
    both = world.request("alice", "GET", f"{S}/app/logs?source=all").json()
    assert {e["source"] for e in both} == {"application", "events"}
    assert "CREATE_SERVICE requested" in [e["text"] for e in both]


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("since=yesterday", "neither a duration"),
        ("limit=-1", "limit"),
        ("limit=10001", "limit"),
        ("source=stdout", "source"),
        ("revision=0", "revision"),
    ],
)
def test_a_filter_that_means_nothing_is_a_clear_error(
    world: RightsWorld, query: str, words: str
) -> None:
    r = world.request("alice", "GET", f"{S}/app/logs?{query}")
    assert r.status_code in (400, 422), r.text
    error = r.json()["error"]
    assert error["code"] == "INVALID_REQUEST" and words in error["message"], error


def test_another_users_service_has_no_logs(world: RightsWorld) -> None:
    r = world.request("bob", "GET", f"{S}/app/logs")
    assert r.status_code == 404 and r.json()["error"]["code"] == "SERVICE_NOT_FOUND"
    r = world.request("bob", "GET", f"{S}/app/logs?follow=true&timeout=0.2")
    assert r.status_code == 404 and r.json()["error"]["code"] == "SERVICE_NOT_FOUND"


@pytest.mark.parametrize("how", ["follow", "accept"])
def test_a_follow_is_server_sent_events_bounded_in_time(world: RightsWorld, how: str) -> None:
    path = f"{S}/app/logs?timeout=0.5"
    headers = dict(world.as_("alice"))
    if how == "follow":
        path += "&follow=true"
    else:
        headers["Accept"] = "text/event-stream"
    with world.client.stream("GET", path, headers=headers) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["cache-control"] == "no-cache"
        body = "".join(r.iter_text())

    events = events_of(body)
    data = [json.loads(d) for kind, d in events if kind == "message"]
    assert [e["text"] for e in data] == ["hello from app", "and an error"]
    end = json.loads(events[-1][1])
    assert events[-1][0] == "end" and "reconnect" in end["reason"]
    assert end["since"] >= data[-1]["at"].replace("Z", "+00:00")  # where to go on from
    ids = [line.removeprefix("id: ") for line in body.splitlines() if line.startswith("id: ")]
    assert len(ids) == 2 and ids[0] < ids[1]


def test_a_reconnect_goes_on_after_the_last_event(world: RightsWorld) -> None:
    first = world.request("alice", "GET", f"{S}/app/logs").json()
    headers = {**world.as_("alice"), "Last-Event-ID": first[-1]["at"]}
    with world.client.stream("GET", f"{S}/app/logs?follow=true&timeout=0.3", headers=headers) as r:
        body = "".join(r.iter_text())
    data = [json.loads(d) for kind, d in events_of(body) if kind == "message"]
    # From its time on: that line again (another may share its time), not the older one.
    assert [e["text"] for e in data] == ["and an error"]


def test_the_document_describes_both_answers(world: RightsWorld, tmp_path: Path) -> None:
    doc = world.client.get("/api/v1/openapi.json").json()
    answer = doc["paths"]["/api/v1/services/{name}/logs"]["get"]["responses"]["200"]
    assert {"application/json", "text/event-stream"} <= set(answer["content"])
    names = {p["name"] for p in doc["paths"]["/api/v1/services/{name}/logs"]["get"]["parameters"]}
    assert {"since", "instance", "revision", "limit", "source", "follow", "timeout"} <= names


class QuietFollower:
    """A follower with nothing to say, that counts how it is asked."""

    def __init__(self) -> None:
        self.backlog: list[LogEntry] = []
        self.polls = 0
        self.closed = False

    def poll(self, timeout_s: float) -> list[LogEntry]:
        self.polls += 1
        time.sleep(timeout_s)
        return []

    def now(self) -> datetime:
        return datetime(2026, 12, 2, tzinfo=UTC)

    def close(self) -> None:
        self.closed = True


class StayingClient:
    scope: dict[str, object] = {}  # noqa: RUF012 (read only)

    async def is_disconnected(self) -> bool:
        return False


@pytest.mark.anyio
async def test_a_waiting_follow_holds_no_worker_thread() -> None:
    """Followed logs wait on the event loop: 32 of them must not take the workers (anyio's 40)
    that every other request runs its blocking calls in."""
    followers = [QuietFollower() for _ in range(50)]
    streams = [
        follow_events(f, cast(Request, StayingClient()), seconds=1.0)  # a test's stand-in
        for f in cast(list[LogFollower], followers)
    ]
    tasks = [asyncio.create_task(_drain(stream)) for stream in streams]
    await asyncio.sleep(0.5)
    limiter = anyio.to_thread.current_default_thread_limiter()
    assert limiter.borrowed_tokens <= 2  # a poll's moment, not one per follow
    ended = await asyncio.gather(*tasks)
    assert all(events[-1].startswith("event: end") for events in ended)
    assert all(f.closed and f.polls >= 2 for f in followers)


async def _drain(stream: AsyncIterator[str]) -> list[str]:
    return [event async for event in stream]


class StoppingServer:
    """A request whose server has begun to stop (`server.Lifespan` sets this event)."""

    def __init__(self) -> None:
        stopping = asyncio.Event()
        stopping.set()
        self.scope = {"state": {"stopping": stopping}}

    async def is_disconnected(self) -> bool:
        return False


@pytest.mark.anyio
async def test_a_follow_ends_when_the_server_begins_to_stop() -> None:
    """So that a stop's drain does not wait for an open follow until it cancels it."""
    follower = QuietFollower()
    stream = follow_events(cast(LogFollower, follower), cast(Request, StoppingServer()), 60)
    assert await _drain(stream) == []  # no `event: end`: the client reconnects elsewhere
    assert follower.closed
