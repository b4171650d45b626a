"""Server-Sent Events: a service's logs as they come (`GET /api/v1/services/{name}/logs` with
`Accept: text/event-stream` or `?follow=true`), for the web console and `baepo services logs -f`.

The stream (`text/event-stream`, as the HTML `EventSource` reads it):

    id: 2026-12-02T09:22:27.123456+00:00          the line's time: a client that reconnects
    data: {"at": "…", "source": "application",      sends it back (Last-Event-ID) and goes on
           "stream": "stdout", "instance": "…",     from that time (so that line comes again:
           "revision": 2, "text": "…", "operation": null}     another may share its time)

    : keep-alive                                   a comment when nothing was sent for 15 s

    event: end                                     the follow's time is up (`timeout`, an hour
    data: {"reason": "…", "since": "…"}            by default): reconnect with this `since` to
                                                   go on (lines sent already may come again)

First the lines the query asks for (its `limit` of the last ones), then each new one. A follow
is bounded in time so that a forgotten client does not hold threads forever; it ends earlier
when the client goes away, or when the server begins to stop (so that a stop does not wait
for it). It waits on the event loop, not in a worker thread: the follower is asked what came
without waiting (a moment in a worker, for the event log's reads) every `POLL_S`, so that
followed logs never take the workers every other request needs.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from pydantic import TypeAdapter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from baepo.control import LogEntry, LogFollower

KEEPALIVE_S = 15.0
POLL_S = 0.25
_ENTRY = TypeAdapter(LogEntry)


def stopping(request: Request) -> bool:
    """Whether the server has begun to stop (`server.Lifespan`): a follow ends then, as when
    its client leaves, instead of holding up the drain until it is cancelled."""
    event = (request.scope.get("state") or {}).get("stopping")
    return isinstance(event, asyncio.Event) and event.is_set()


def sse_entry(entry: LogEntry) -> str:
    return f"id: {entry.at.isoformat()}\ndata: {_ENTRY.dump_json(entry).decode()}\n\n"


async def follow_events(
    follower: LogFollower, request: Request, seconds: float
) -> AsyncIterator[str]:
    """The follower's backlog, then what comes, for `seconds` or until the client leaves;
    the follower is closed in every case."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    try:
        for entry in follower.backlog:
            yield sse_entry(entry)
        last_sent = loop.time()
        resume = follower.now()
        while (left := deadline - loop.time()) > 0:
            resume = follower.now()
            entries = await run_in_threadpool(follower.poll, 0)
            for entry in entries:
                yield sse_entry(entry)
            if entries:
                last_sent = loop.time()
                continue  # more may be waiting
            if loop.time() - last_sent >= KEEPALIVE_S:
                yield ": keep-alive\n\n"
                last_sent = loop.time()
            if await request.is_disconnected() or stopping(request):
                return
            await asyncio.sleep(min(POLL_S, left))
        end = {
            "reason": f"a follow lasts at most {seconds:g} s; reconnect",
            "since": resume.isoformat(),
        }
        yield f"event: end\ndata: {json.dumps(end)}\n\n"
    finally:
        follower.close()
