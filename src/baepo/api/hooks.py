"""`POST /api/v1/hooks/{github,gitea,gitlab}/{service}`: a push announced by a webhook runs the
service's pipeline on the pushed commit.

No API token: the signature over the raw body (or GitLab's token) is the authentication, with
the service's webhook secret. Until a service has a webhook secret, and for a service that does
not exist, the answer is the same `401 WEBHOOK_REJECTED` as for a bad signature, so a stranger
learns no names. Then, in order:

    event that runs nothing (ping, tag, deleted branch)  200 {"status": "ignored", "reason"}
    payload that is no push event                        400 INVALID_WEBHOOK
    no source URL set for the service                    409 WEBHOOK_NOT_CONFIGURED
    pushed repository is not the service's source URL    403 SOURCE_MISMATCH
    delivery id seen before (a replay)                   200 {"status": "duplicate", "run"}
    commit fetched (from the source URL), run queued     202 {"status": "queued", "run"}
    still fetching after `answer_within_s`               202 {"status": "accepted"}
    branch the pipeline has nothing for                  200 {"status": "ignored", "reason"}
    fetch failed                                         502 FETCH_FAILED
    too many webhooks being fetched at once              503 BUSY (retry later)

GitHub gives a receiver 10 s: a fetch that takes longer goes on after the answer, and the run
it queues is still recorded with the delivery. A delivery whose fetch or queueing failed is
forgotten, so the provider's redelivery runs. The commit is always fetched from the source URL
the service's owner set, never from a URL the payload names; fetch and queueing run in worker
threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from baepo.api.errors import ApiError, ErrorBody
from baepo.pipelines.deliveries import Deliveries
from baepo.pipelines.errors import FetchFailed, InvalidWebhookPayload, WebhookRejected
from baepo.pipelines.fetch import fetch_commit
from baepo.pipelines.webhooks import PROVIDERS, Ignored, PushEvent, read_event, same_repository
from baepo.pipelines.webhooks import verify as verify_signature

log = logging.getLogger(__name__)

MAX_BODY = 10 * 1024 * 1024
"""GitHub caps a delivery at 25 MB, but a push event is a few kilobytes (20 commits at most)."""


@dataclass(frozen=True)
class HookTarget:
    """What a service's webhook needs to know of it."""

    secret: str | None
    """The webhook secret (opened); None: webhooks are refused."""
    source_url: str | None
    """Where its commits are fetched from; None: webhooks are refused."""


Lookup = Callable[[str], HookTarget | None]
"""A service's webhook settings by name; None when there is no such service."""

Submit = Callable[[str, PushEvent, Path], str | None]
"""Queue a run of `service` for the event on the fetched tree (a tar that the call takes or
leaves); the run's id, or None when the pipeline has nothing for that branch."""


class HookAnswer(BaseModel):
    """What became of a delivery."""

    status: str = Field(description="queued | accepted | duplicate | ignored")
    run: str | None = Field(default=None, description="the run it queued (queued, duplicate)")
    reason: str | None = Field(default=None, description="why nothing runs (ignored)")
    delivery: str | None = Field(default=None, description="its delivery id (accepted)")


_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"model": HookAnswer, "description": "Nothing runs: ignored, or a duplicate"},
    202: {"model": HookAnswer, "description": "A run is queued, or the commit being fetched"},
    413: {"model": ErrorBody, "description": "The body is larger than a webhook's"},
    502: {"model": ErrorBody, "description": "The commit could not be fetched"},
}


@dataclass(frozen=True)
class HookLimits:
    fetch_timeout_s: float = 120.0
    answer_within_s: float = 8.0
    concurrent_fetches: int = 4
    allow_private: bool = False
    """Fetch from loopback and private networks too (tests; a private git server)."""


def hooks_router(
    lookup: Lookup,
    submit: Submit,
    deliveries: Deliveries,
    work_dir: Path,
    limits: HookLimits = HookLimits(),
) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["pipelines"])
    fetching = threading.BoundedSemaphore(limits.concurrent_fetches)
    pending: set[asyncio.Task[Any]] = set()

    def run(service: str, event: PushEvent, source_url: str) -> str | None:
        """Fetch and queue (in a worker thread); the delivery is released if either fails."""
        try:
            work = work_dir / secrets.token_hex(8)
            tar = work.with_suffix(".tar")
            try:
                fetch_commit(
                    source_url,
                    event.commit,
                    tar,
                    work=work,
                    timeout_s=limits.fetch_timeout_s,
                    branch=event.branch,
                    allow_private=limits.allow_private,
                )
                run_id = submit(service, event, tar)
            finally:
                tar.unlink(missing_ok=True)
                shutil.rmtree(work, ignore_errors=True)
            if run_id is not None:
                deliveries.attach(event.provider, event.delivery_id, run_id)
            return run_id
        except BaseException:
            deliveries.release(event.provider, event.delivery_id)
            raise
        finally:
            fetching.release()

    @router.post("/hooks/{provider}/{service}", status_code=202, responses=_ANSWERS)
    async def webhook(provider: str, service: str, request: Request) -> JSONResponse:
        """A push from GitHub, Gitea/Forgejo or GitLab, signed with the service's webhook
        secret: runs the service's pipeline on the pushed commit, fetched from its source URL."""
        if provider not in PROVIDERS:
            raise ApiError(404, "NOT_FOUND", f"webhooks come from {', '.join(PROVIDERS)}")
        body = await _body(request)
        headers = dict(request.headers)
        target = await run_in_threadpool(lookup, service)
        secret = target.secret if target is not None else None
        try:
            # A made-up secret for a service that has none: the same work, the same answer.
            verify_signature(provider, headers, body, secret or secrets.token_hex(16))
            if not secret:
                raise WebhookRejected("no webhook secret")
        except WebhookRejected:
            raise ApiError(
                401, "WEBHOOK_REJECTED", "the webhook's signature does not check"
            ) from None
        assert target is not None
        try:
            event = read_event(provider, headers, body)
        except InvalidWebhookPayload as exc:
            raise ApiError(400, "INVALID_WEBHOOK", str(exc)) from None
        if isinstance(event, Ignored):
            return _answer(200, status="ignored", reason=event.reason)
        if not target.source_url:
            raise ApiError(
                409,
                "WEBHOOK_NOT_CONFIGURED",
                f"set the source URL of {service} first (baepo pipelines settings "
                f"{service} --source-url URL)",
            )
        if not same_repository(target.source_url, event.urls):
            raise ApiError(
                403,
                "SOURCE_MISMATCH",
                f"the push is to {event.clone_url}, not to {service}'s source URL",
            )
        claimed = await run_in_threadpool(deliveries.claim, provider, event.delivery_id, service)
        if not claimed:
            run_id = await run_in_threadpool(deliveries.run_of, provider, event.delivery_id)
            return _answer(200, status="duplicate", run=run_id)
        if not fetching.acquire(blocking=False):
            await run_in_threadpool(deliveries.release, provider, event.delivery_id)
            raise ApiError(503, "BUSY", "too many webhooks are being fetched; retry later")
        task = asyncio.ensure_future(run_in_threadpool(run, service, event, target.source_url))
        pending.add(task)  # held until it ends, even if this request goes away first
        task.add_done_callback(pending.discard)
        done, _ = await asyncio.wait({task}, timeout=limits.answer_within_s)
        if not done:
            task.add_done_callback(_outlived(service, event))
            return _answer(202, status="accepted", delivery=event.delivery_id)
        try:
            run_id = task.result()
        except FetchFailed as exc:
            raise ApiError(502, "FETCH_FAILED", f"cannot fetch {event.commit}: {exc}") from None
        if run_id is None:
            return _answer(200, status="ignored", reason=f"no pipeline for branch {event.branch}")
        return _answer(202, status="queued", run=run_id)

    return router


async def _body(request: Request) -> bytes:
    """The raw body (the signature is over these bytes), at most `MAX_BODY`."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise ApiError(413, "TOO_LARGE", f"a webhook body is at most {MAX_BODY} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise ApiError(413, "TOO_LARGE", f"a webhook body is at most {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _answer(code: int, **fields: Any) -> JSONResponse:
    return JSONResponse(fields, status_code=code)


def _outlived(service: str, event: PushEvent) -> Callable[[asyncio.Task[Any]], None]:
    """What happens to a fetch that outlived its answer: logged, since no one waits for it."""

    def done(task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and (problem := task.exception()) is not None:
            log.warning(
                "webhook %s %s for %s: %s", event.provider, event.delivery_id, service, problem
            )

    return done
