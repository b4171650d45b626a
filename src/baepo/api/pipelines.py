"""`/api/v1/pipelines`: a service's pipeline runs, their logs (whole, or followed as
Server-Sent Events), cancel and re-run; and `/api/v1/services/{name}/pipeline`: its settings.

Rights are the services' (`api/services.py`): seeing a run and its log is reading its service,
cancelling and re-running one is deploying it, changing the settings (and making a webhook
secret) is changing the service. A run of a service the caller does not reach answers
`404 RUN_NOT_FOUND`, as if it did not exist.

A followed log (`?follow=true`, or `Accept: text/event-stream`):

    id: 12                              the line's number in the run's log, from 1: a client
    data: {"line": 12, "text": "…"}     that reconnects sends it back (Last-Event-ID) and
                                        goes on after it
    : keep-alive                        a comment when nothing was sent for 15 s
    event: end                          the run has ended (every line was sent): its status
    data: {"run": "…", "status": "SUCCEEDED", "message": "…"}
    event: end                          or the follow's time is up (`timeout`): reconnect
    data: {"reason": "…", "line": 12}   with Last-Event-ID to go on

Like the services' logs it waits on the event loop, asking the follower what came without
waiting (a file read, in a worker) every `POLL_S`.
"""

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse, Response

from baepo.api.security import Identity
from baepo.api.services import caller
from baepo.api.streams import KEEPALIVE_S, POLL_S, stopping
from baepo.auth.rights import ServiceAction
from baepo.pipelines import MAX_LIST, PipelineSettings, RunLogFollower, Runs, RunView, Settings


class SettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    deploy_branch: str | None = Field(
        default=None, max_length=255, description="pushes of this branch deploy", examples=["main"]
    )
    source_url: str | None = Field(
        default=None,
        max_length=1024,
        description="the http(s) git URL webhooks' commits are fetched from ('' forgets it)",
        examples=["https://github.com/team/app.git"],
    )


class WebhookSecret(BaseModel):
    service: str
    secret: str = Field(description="shown once: only its sealed form is kept")


def _text(run_line: int, text: str) -> str:
    return f"id: {run_line}\ndata: {json.dumps({'line': run_line, 'text': text})}\n\n"


async def run_events(
    follower: RunLogFollower[RunView], request: Request, seconds: float, after: int = 0
) -> AsyncIterator[str]:
    """The run's log lines after line `after`, then the end; closed in every case."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    number = 0
    last_sent = loop.time()
    try:
        while (left := deadline - loop.time()) > 0:
            lines = await run_in_threadpool(follower.poll, 0)
            for text in lines:
                number += 1
                if number > after:
                    yield _text(number, text)
                    last_sent = loop.time()
            if follower.done:
                run = await run_in_threadpool(lambda: follower.run)
                ended = {"run": run.id, "status": run.status, "message": run.message}
                yield f"event: end\ndata: {json.dumps(ended)}\n\n"
                return
            if lines:
                continue  # more may be waiting
            if loop.time() - last_sent >= KEEPALIVE_S:
                yield ": keep-alive\n\n"
                last_sent = loop.time()
            if await request.is_disconnected() or stopping(request):
                return
            await asyncio.sleep(min(POLL_S, left))
        cut = {"reason": f"a follow lasts at most {seconds:g} s; reconnect", "line": number}
        yield f"event: end\ndata: {json.dumps(cut)}\n\n"
    finally:
        follower.close()


def pipelines_router(
    runs: Runs, settings: Settings, who: Callable[..., Awaitable[Identity]]
) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["pipelines"])
    Me = Annotated[Identity, Depends(who)]

    @router.get("/pipelines/runs", response_model=list[RunView])
    async def list_runs(
        me: Me,
        service: Annotated[
            str | None, Query(description="only this service's", max_length=40)
        ] = None,
        limit: Annotated[int, Query(description="at most this many", ge=1, le=MAX_LIST)] = 50,
    ) -> list[RunView]:
        """Newest first: the runs of the services the caller reaches."""
        who = caller(me, ServiceAction.READ)
        return await run_in_threadpool(runs.list, service, caller=who, limit=limit)

    @router.get("/pipelines/runs/{run_id}", response_model=RunView)
    async def get_run(run_id: str, me: Me) -> RunView:
        """One run: its status, steps (with exit codes and times), image and operation."""
        return await run_in_threadpool(runs.get, run_id, caller=caller(me, ServiceAction.READ))

    @router.get(
        "/pipelines/runs/{run_id}/logs",
        # Not response_class=PlainTextResponse: that would document the JSON errors as text.
        responses={
            200: {
                "description": "The run's log as text; or, followed, Server-Sent Events: one "
                "`data:` line of JSON per log line, then `event: end` with the run's status",
                "content": {
                    "text/plain": {"schema": {"type": "string"}},
                    "text/event-stream": {"schema": {"type": "string"}},
                },
            }
        },
    )
    async def run_log(
        run_id: str,
        me: Me,
        request: Request,
        follow: Annotated[
            bool, Query(description="follow it as Server-Sent Events until the run ends")
        ] = False,
        timeout: Annotated[
            float, Query(description="seconds a follow lasts at most", gt=0, le=86400)
        ] = 3600,
    ) -> Response:
        """The run's log: its steps' output, the build's, the deploy's, secrets masked."""
        who = caller(me, ServiceAction.READ)
        if follow or "text/event-stream" in request.headers.get("accept", ""):
            last = request.headers.get("last-event-id", "")
            follower = await run_in_threadpool(runs.follow, run_id, caller=who)
            return StreamingResponse(
                run_events(follower, request, timeout, int(last) if last.isdigit() else 0),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        path = await run_in_threadpool(runs.log_path, run_id, caller=who)
        if not await run_in_threadpool(path.exists):
            return PlainTextResponse("")  # a run that waits has written nothing yet
        return FileResponse(path, media_type="text/plain; charset=utf-8")

    @router.post("/pipelines/runs/{run_id}/cancel", response_model=RunView)
    async def cancel(run_id: str, me: Me) -> RunView:
        """A run that waits ends at once; one that executes stops (its step is killed, its
        build broken off, or its deploy no longer waited for: that goes on)."""
        return await run_in_threadpool(runs.cancel, run_id, caller=caller(me, ServiceAction.DEPLOY))

    @router.post("/pipelines/runs/{run_id}/rerun", response_model=RunView, status_code=202)
    async def rerun(run_id: str, me: Me) -> RunView:
        """Run the same commit again (a new run)."""
        return await run_in_threadpool(runs.rerun, run_id, caller=caller(me, ServiceAction.DEPLOY))

    @router.get("/services/{name}/pipeline", response_model=PipelineSettings)
    async def get_settings(name: str, me: Me) -> PipelineSettings:
        """The deploy branch, the source URL webhooks fetch from, whether webhooks have a
        secret."""
        return await run_in_threadpool(settings.get, name, caller=caller(me, ServiceAction.READ))

    @router.patch("/services/{name}/pipeline", response_model=PipelineSettings)
    async def change_settings(name: str, body: SettingsIn, me: Me) -> PipelineSettings:
        who = caller(me, ServiceAction.CHANGE)
        return await run_in_threadpool(
            lambda: settings.update(
                name, caller=who, deploy_branch=body.deploy_branch, source_url=body.source_url
            )
        )

    @router.post("/services/{name}/pipeline/webhook-secret", response_model=WebhookSecret)
    async def rotate_webhook_secret(name: str, me: Me) -> WebhookSecret:
        """A new secret for the service's webhooks (the old one stops working): shown once."""
        who = caller(me, ServiceAction.CHANGE)
        secret = await run_in_threadpool(lambda: settings.rotate_webhook_secret(name, caller=who))
        return WebhookSecret(service=name, secret=secret)

    return router
