"""Passing requests on to the leader, when several Baepo processes share one database.

Most of Baepo keeps its state in the database and the blob store, which every process shares:
any process answers the registry, the API and the console. The git remote and the pipelines
also keep files on the machine that runs them (the pushed repositories, the runs' sources,
workspaces and logs), and so does the log keeper (what gone instances wrote): those run in the
leader only, and another process passes their requests on to it (`leaders`), streaming both
ways, so that a `git push` or a provider's webhook that the load balancer sends anywhere lands
where its files are.

The leader is whoever holds the `control` lease; its holder names the address the others reach
it at (`Config.advertised_address`). Read from the database at most once a second. With no
leader (between one's death and the next one's claim, at most a lease's length) such a request
gets 503 and a `Retry-After`: git and the providers retry.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from baepo.clock import Clock
from baepo.store import StoreError
from baepo.store.leases import Lease

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

LEADER_PATHS = ("/git/", "/api/v1/hooks/", "/api/v1/pipelines/", "/internal/pipelines/")
"""What the leader alone answers: the git remote, webhooks, pipeline runs and their logs."""
SERVICE_LOGS = re.compile(r"^/api/v1/services/[^/]+/logs$")
"""And services' logs: what gone instances wrote is kept by the leader's reconciler."""
READ_S = 1.0
"""How long the leader's address, once read, is taken as current."""
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)


def holder_for(address: str, pid: int, token: str) -> str:
    """A lease holder's name: where the others reach it, and what tells its runs apart."""
    return f"{address}/{pid}/{token}"


def leaders(path: str) -> bool:
    """Whether only the leader answers `path`."""
    return path.startswith(LEADER_PATHS) or SERVICE_LOGS.match(path) is not None


class Leader:
    """Where the leader is, as this process sees it."""

    def __init__(self, lease: Lease, leading: Callable[[], bool], clock: Clock) -> None:
        self._lease = lease
        self._leading = leading
        self._clock = clock
        self._address: str | None = None
        self._read_at = -READ_S

    def address(self) -> str | None:
        """None when this process leads; the leader's address otherwise. `NoLeader` when the
        lease is free or expired."""
        if self._leading():
            return None
        if self._clock.monotonic() - self._read_at >= READ_S:
            self._address = self._read()
            self._read_at = self._clock.monotonic()
        if self._address is None:
            raise NoLeader("no process leads right now")
        return self._address

    def _read(self) -> str | None:
        try:
            held = self._lease.holder_now()
        except StoreError as exc:
            raise NoLeader(str(exc)) from exc
        if held is None:
            return None
        holder, _, expires_at = held
        if expires_at <= self._clock.now():
            return None
        return holder.split("/")[0]


class NoLeader(Exception):
    pass


class LeaderForwarding:
    """ASGI middleware: `LEADER_PATHS` go to the leader unless this process leads."""

    def __init__(self, app: ASGIApp, leader: Leader, read_timeout_s: float) -> None:
        self.app = app
        self._leader = leader
        self._read_timeout_s = read_timeout_s
        self._client: httpx.AsyncClient | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not leaders(scope["path"]):
            await self.app(scope, receive, send)
            return
        try:
            address = await asyncio.to_thread(self._leader.address)  # may read the database
        except NoLeader as exc:
            await _error(scope, receive, send, "NO_LEADER", f"no leader to pass this on to ({exc})")
            return
        if address is None:
            await self.app(scope, receive, send)
            return
        await self._forward(address, scope, receive, send)

    async def _forward(self, address: str, scope: Scope, receive: Receive, send: Send) -> None:
        import httpx  # only a process that passes requests on needs it (~4 MB resident)

        if self._client is None:
            timeout = httpx.Timeout(10.0, read=self._read_timeout_s)
            self._client = httpx.AsyncClient(timeout=timeout)
        path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        url = f"http://{address}{path.decode('latin-1')}"
        if query:
            url += "?" + query.decode("latin-1")
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in HOP_BY_HOP]
        request = self._client.build_request(
            scope["method"], url, headers=headers, content=_body(receive)
        )
        try:
            response = await self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            log.warning("cannot pass %s on to the leader at %s: %s", scope["path"], address, exc)
            await _error(
                scope, receive, send, "NO_LEADER", f"the leader at {address} does not answer"
            )
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [
                        (k, v) for k, v in response.headers.raw if k.lower() not in HOP_BY_HOP
                    ],
                }
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


async def _error(scope: Scope, receive: Receive, send: Send, code: str, message: str) -> None:
    """503: nothing to pass the request on to, now; worth retrying."""
    answer = JSONResponse(
        {"error": {"code": code, "message": message}},
        status_code=503,
        headers={"Retry-After": "2"},
    )
    await answer(scope, receive, send)
