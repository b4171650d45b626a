"""Live logs in the browser: the API's Server-Sent Events (a service's followed log, a
pipeline run's) relayed to the page as they come, by `static/live.js` (an `EventSource`).

The relay passes the API's events on unchanged, so the browser's reconnect works as the API
documents it: the browser sends back the last event's id (`Last-Event-ID`) and the API goes on
from there. A follow lasts `FOLLOW_S` at most (then the API ends it with `event: end` and the
browser reconnects); it ends at once when the browser goes away (Starlette cancels the relay,
which ends the API's request as a client that left: `client.Stream.close`). When the server
begins to stop, the API's follow ends (the page's request state, which the API's request
shares, says so: `server.Lifespan`), and the relay with it: a stop does not wait for an open
page.

    GET /services/{name}/logs/live          the service's log: its last `LOG_LINES`, then on
    GET /pipelines/runs/{run_id}/log/live   the run's log from its first line, until it ends
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.responses import Response, StreamingResponse

from baepo.console.client import Stream, segment
from baepo.console.pages import HEADERS
from baepo.console.services import LOG_LINES, service_path
from baepo.console.visits import Visit

FOLLOW_S = 900
"""How long one follow lasts (the browser reconnects after it: a forgotten tab costs a
request a quarter of an hour, not a thread)."""
EVENT_STREAM_HEADERS = {**HEADERS, "X-Accel-Buffering": "no"}


async def service_log(visit: Visit) -> Response:
    path = service_path(visit.request.path_params["name"])
    return await relay(visit, f"{path}/logs?follow=true&limit={LOG_LINES}&timeout={FOLLOW_S}")


async def run_log(visit: Visit) -> Response:
    run = segment(visit.request.path_params["run_id"])
    return await relay(visit, f"/pipelines/runs/{run}/logs?follow=true&timeout={FOLLOW_S}")


async def relay(visit: Visit, api_path: str) -> Response:
    """The API's events at `api_path` as the answer's body; a refusal (the service is gone,
    or not the caller's) is the API's page, which an `EventSource` takes as the end."""
    stream = await visit.api.stream(api_path, visit.request.headers.get("last-event-id", ""))
    return StreamingResponse(
        forward(stream), media_type="text/event-stream", headers=EVENT_STREAM_HEADERS
    )


async def forward(stream: Stream) -> AsyncIterator[bytes]:
    try:
        async for chunk in stream.chunks():
            yield chunk
    finally:
        await stream.close()
