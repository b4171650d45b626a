"""A service's git remote over smart HTTP, and the internal endpoint its pushes report to.

    git remote add baepo http://127.0.0.1:5000/git/<service>.git
    git push baepo main          # user name + API token (or password): HTTP Basic

    GET  /git/<service>.git/info/refs?service=git-upload-pack    fetch, clone   READ
    POST /git/<service>.git/git-upload-pack                                     READ
    GET  /git/<service>.git/info/refs?service=git-receive-pack   push           DEPLOY
    POST /git/<service>.git/git-receive-pack                                    DEPLOY

Rights are the services API's (auth/rights.py): no or wrong credentials → `401` with a Basic
challenge (git asks its credential helper, or fails at once with GIT_TERMINAL_PROMPT=0); a
token that may not act on services at all → `403`; a service the caller does not reach, or
that does not exist → `404` (names do not leak). A push makes the service's repository on first
use; a fetch of a service nothing was pushed to yet is `404`. Answers that are not git's are
`text/plain`: git shows them to the user (`remote: …`). Only smart HTTP is served: no dumb
protocol files, whatever the path.

    POST /internal/pipelines/pushes/<push id>?branch=B&commit=C     (pushes.py, hook.py)

A push's pre-receive hook posts each branch's tree here with the push's one-time secret; the
answer streams the run's log and ends with the result line. Not in OpenAPI.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import tempfile
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from baepo.api.errors import ApiError
from baepo.api.security import Identity
from baepo.api.services import caller as service_caller
from baepo.auth import Auth, AuthenticationRequired, AuthUnavailable, Principal, TooManyAttempts
from baepo.auth.rights import ServiceAction
from baepo.control import Caller
from baepo.pipelines.git_http import BackendLimits, CgiCall, GitHttpBackend
from baepo.pipelines.git_remote import GitRepositories, RepositoryError
from baepo.pipelines.hook import SECRET_VARIABLE, URL_VARIABLE, Result
from baepo.pipelines.pushes import BranchWanted, PushAnswer, PushRuns, PushTickets

log = logging.getLogger(__name__)

PUSHES_PATH = "/internal/pipelines/pushes"
SERVICES = {"git-upload-pack": ServiceAction.READ, "git-receive-pack": ServiceAction.DEPLOY}
COMMIT = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
BRANCH_MAX = 255
CHALLENGE = {"WWW-Authenticate": 'Basic realm="baepo"'}

ServiceLookup = Callable[[str, Caller], str | None]
"""The incarnation of the live service of that name the caller reaches (e.g. its owner and
creation time, see git_remote.py); None when it reaches none (control's rules)."""


def git_routes(
    auth: Auth,
    lookup: ServiceLookup,
    repositories: GitRepositories,
    runs: PushRuns,
    branch_wanted: BranchWanted,
    *,
    spool: Path,
    limits: BackendLimits = BackendLimits(),
    internal_url: str | None = None,
    refused: tuple[type[Exception], ...] = (),
    tickets: PushTickets | None = None,
) -> list[BaseRoute]:
    """The git remote's routes and the push endpoint's. `spool` holds pushed trees until a run
    takes them; `internal_url` is where the hook reaches this server (default: the address a
    request came in on); `refused` are the errors of `runs.submit` a pusher is shown."""
    tickets = tickets or PushTickets()
    backend = GitHttpBackend(repositories.root, limits)
    remote = GitRemote(auth, lookup, repositories, backend, tickets, internal_url)

    async def push(request: Request) -> Response:
        ticket = tickets.redeem(
            request.path_params["push_id"], request.headers.get("authorization")
        )
        if ticket is None:
            return _text(401, "this push is over, or the secret is wrong")
        branch = request.query_params.get("branch", "")
        commit = request.query_params.get("commit", "")
        if (
            not 0 < len(branch) <= BRANCH_MAX
            or not branch.isprintable()
            or not COMMIT.match(commit)
        ):
            return _text(400, "a branch name and a full commit id are required")
        source = await _spool(request, spool, limits.max_request_bytes)
        if source is None:
            return _text(413, f"the pushed tree is larger than {limits.max_request_bytes} bytes")
        answer = PushAnswer(
            runs,
            branch_wanted,
            ticket,
            source=source,
            branch=branch,
            commit=commit,
            refused=refused,
        )
        return StreamingResponse(_relay(answer), media_type="text/plain; charset=utf-8")

    return [
        Route(
            "/git/{service}.git/{path:path}",
            remote,
            methods=["GET", "POST"],
            include_in_schema=False,
        ),
        Route(PUSHES_PATH + "/{push_id}", push, methods=["POST"], include_in_schema=False),
    ]


class GitRemote:
    """The ASGI app of `/git/<service>.git/…`: authenticate, check rights, run the backend."""

    def __init__(
        self,
        auth: Auth,
        lookup: ServiceLookup,
        repositories: GitRepositories,
        backend: GitHttpBackend,
        tickets: PushTickets,
        internal_url: str | None,
    ) -> None:
        self.auth = auth
        self.lookup = lookup
        self.repositories = repositories
        self.backend = backend
        self.tickets = tickets
        self.internal_url = internal_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        service: str = request.path_params["service"]
        path: str = request.path_params["path"]
        action = _action(request.method, path, request.query_params.get("service"))
        if action is None:
            await _text(404, "only git's smart HTTP protocol is served here")(scope, receive, send)
            return
        answer = await self._admit(request, service, action)
        if isinstance(answer, Response):
            await answer(scope, receive, send)
            return
        who, caller = answer
        environment: dict[str, str] = {}
        ticket = None
        if path == "git-receive-pack":
            ticket = self.tickets.issue(service, caller)
            environment[URL_VARIABLE] = f"{self._base(scope)}{PUSHES_PATH}/{ticket.id}"
            environment[SECRET_VARIABLE] = ticket.secret
        call = CgiCall(f"/{service}.git/{path}", who.name, environment)
        try:
            await self.backend.serve(call, scope, receive, send)
        finally:
            if ticket is not None:
                self.tickets.revoke(ticket.id)

    async def _admit(
        self, request: Request, service: str, action: ServiceAction
    ) -> tuple[Identity, Caller] | Response:
        """Who asks and what they reach; or the answer that refuses them."""
        header = request.headers.get("authorization")
        if not header:
            return _text(401, "sign in with your user name and an API token", CHALLENGE)
        address = request.client.host if request.client else None
        try:
            who = await run_in_threadpool(self.auth.caller_from_header, header, address=address)
        except TooManyAttempts as exc:
            return _text(429, str(exc), {"Retry-After": str(exc.retry_after)})
        except AuthenticationRequired as exc:
            return _text(401, str(exc), CHALLENGE)
        except AuthUnavailable as exc:
            return _text(503, str(exc))
        if who is None or isinstance(who, Principal):
            return _text(401, "use your user name and an API token or password", CHALLENGE)
        me = Identity(who.name, who.is_admin, who.repositories, who.services)
        try:
            caller = service_caller(me, action)
        except ApiError as exc:
            return _text(exc.status, exc.message)
        incarnation = await run_in_threadpool(self.lookup, service, caller)
        if incarnation is None:
            return _text(404, f"no service named {service!r}")
        try:
            if action is ServiceAction.DEPLOY:
                await run_in_threadpool(self.repositories.ensure, service, incarnation)
            elif not await run_in_threadpool(self.repositories.exists, service, incarnation):
                return _text(404, f"nothing was pushed to {service} yet")
        except RepositoryError as exc:
            log.error("git remote of %s: %s", service, exc)
            return _text(500, str(exc))
        return me, caller

    def _base(self, scope: Scope) -> str:
        if self.internal_url is not None:
            return self.internal_url.rstrip("/")
        host, port = scope["server"]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _action(method: str, path: str, asked: str | None) -> ServiceAction | None:
    """What a smart-HTTP request does, or None for anything else (the dumb protocol)."""
    if method == "GET" and path == "info/refs":
        return SERVICES.get(asked or "")
    if method == "POST":
        return SERVICES.get(path)
    return None


async def _spool(request: Request, spool: Path, limit: int) -> Path | None:
    """The request body in a file of `spool`; None (and no file) when over `limit` bytes."""
    await run_in_threadpool(spool.mkdir, parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix="push-", suffix=".tar", dir=spool)
    path = Path(name)
    size = 0
    try:
        with os.fdopen(handle, "wb") as file:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    path.unlink()
                    return None
                await run_in_threadpool(file.write, chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


async def _relay(answer: PushAnswer) -> AsyncIterator[bytes]:
    """The answer's lines as they come: read in a thread of its own (following a run blocks
    for as long as the run), so that a push never holds one of the workers other requests
    need; closed when the pusher goes away."""
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()

    def put(line: str | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: Baepo is stopping
            loop.call_soon_threadsafe(lines.put_nowait, line)

    def pump() -> None:
        try:
            for line in answer:
                put(line)
        except Exception:
            log.exception("a push's answer failed")
            put(Result(ok=False, status="ERROR", message="Baepo failed: see its log").line())
        finally:
            put(None)

    threading.Thread(target=pump, name="baepo-push", daemon=True).start()
    try:
        while (line := await lines.get()) is not None:
            yield (line + "\n").encode()
    finally:
        answer.close()


def _text(status: int, message: str, headers: dict[str, str] | None = None) -> PlainTextResponse:
    return PlainTextResponse(message + "\n", status_code=status, headers=headers)
