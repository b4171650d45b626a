"""The registry's HTTP edge: an ASGI app for every path under `/v2`.

    GET/HEAD    /v2/                                      API version check (auth only)
    GET         /v2/_catalog?n=&last=                     repositories
    GET         /v2/<name>/tags/list?n=&last=             tags
    GET/HEAD    /v2/<name>/manifests/<reference>          pull a manifest
    PUT         /v2/<name>/manifests/<reference>          push a manifest
    DELETE      /v2/<name>/manifests/<reference>          delete a manifest (digest) or tag
    GET/HEAD    /v2/<name>/blobs/<digest>                 pull a blob (Range supported)
    DELETE      /v2/<name>/blobs/<digest>                 unlink a blob from the repository
    POST        /v2/<name>/blobs/uploads/[?digest=|?mount=&from=]
    GET/PATCH/PUT/DELETE  /v2/<name>/blobs/uploads/<uuid>[?digest=]
    GET         /v2/<name>/referrers/<digest>[?artifactType=]

Every request is authorized through the `RegistryGate` (web/call.py) before its handler
runs; every answer carries `Docker-Distribution-API-Version: registry/2.0`. Errors are
mapped to OCI error bodies here and only here: `RegistryError` by its code (auth errors
arrive as one, made by web/call.py, with their challenge), and anything unexpected to a
logged 500 without a traceback for the client.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
from starlette.requests import ClientDisconnect, Request
from starlette.types import Message, Receive, Scope, Send

from baepo.auth.access import CATALOG, repository
from baepo.auth.gate import RegistryGate
from baepo.registry.errors import RegistryError, Unsupported
from baepo.registry.references import check_name, is_name
from baepo.registry.service import Registry
from baepo.registry.web import blobs, listing, manifests, uploads
from baepo.registry.web.call import BASE, Call
from baepo.registry.web.responses import ASGIResponse, error_response

log = logging.getLogger(__name__)

API_VERSION = (b"docker-distribution-api-version", b"registry/2.0")

_REPO_ROUTE = re.compile(
    r"/v2/(?P<name>.+)/(?:"
    r"(?P<uploads>blobs/uploads)(?:/(?P<uuid>[^/]*))?"
    r"|(?P<kind>manifests|blobs|referrers)/(?P<arg>[^/]+)"
    r"|(?P<tags>tags/list))"
)


Handler = Callable[[Call], Awaitable[ASGIResponse]]


@dataclass(frozen=True)
class Route:
    handler: Handler
    actions: tuple[str, ...]  # repository actions; () for the base and catalog routes
    # The handler's first step is `call.run(lookup)`, which authorizes; the app does not
    # authorize before it (one worker-thread trip instead of two).
    deferred: bool = False


class RegistryApp:
    def __init__(self, registry: Registry, gate: RegistryGate) -> None:
        self.registry = registry
        self.gate = gate
        pull, push, delete = ("pull",), ("pull", "push"), ("delete",)
        self._routes: dict[str, dict[str, Route]] = {
            "manifests": {
                "GET": Route(manifests.get, pull, deferred=True),
                "HEAD": Route(manifests.get, pull, deferred=True),
                "PUT": Route(manifests.put, push),
                "DELETE": Route(manifests.delete, delete),
            },
            "blobs": {
                "GET": Route(blobs.get, pull, deferred=True),
                "HEAD": Route(blobs.get, pull, deferred=True),
                "DELETE": Route(blobs.delete, delete),
            },
            "uploads": {"POST": Route(uploads.start, push)},
            "upload": {
                "GET": Route(uploads.status, push),
                "PATCH": Route(uploads.patch, push),
                "PUT": Route(uploads.put, push),
                "DELETE": Route(uploads.cancel, push),
            },
            "tags": {"GET": Route(listing.tags, pull), "HEAD": Route(listing.tags, pull)},
            "referrers": {
                "GET": Route(listing.referrers, pull),
                "HEAD": Route(listing.referrers, pull),
            },
            "catalog": {"GET": Route(listing.catalog, ()), "HEAD": Route(listing.catalog, ())},
            "base": {"GET": Route(listing.base, ()), "HEAD": Route(listing.base, ())},
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), API_VERSION]
            await send(message)

        body = _Body(receive)
        request = Request(scope, body.receive)
        call = Call(request, self.registry, self.gate)
        try:
            response = await self._dispatch(call)
        except RegistryError as exc:
            response = error_response(exc, head=call.head)
            if exc.status >= 500:  # our failure, not the client's: let it finish sending
                await body.drain()
        except ClientDisconnect:
            return
        except Exception:
            log.exception("registry request %s %s failed", request.method, scope.get("path"))
            response = error_response(RegistryError("internal error"), head=call.head)
            await body.drain()
        await response(scope, receive, send_with_version)

    async def _dispatch(self, call: Call) -> ASGIResponse:
        path: str = call.request.scope["path"]
        kind, call.name, call.arg = _route(path)
        route = self._routes[kind].get(call.request.method)
        if route is None:
            allowed = ", ".join(sorted(self._routes[kind]))
            raise Unsupported(
                "method not allowed",
                {"method": call.request.method},
                headers={"Allow": allowed},
            )
        if kind == "base":
            call.wanted = BASE
        elif kind == "catalog":
            call.wanted = CATALOG
        else:
            call.wanted = repository(call.name, *route.actions)
            source = call.request.query_params.get("from")
            if call.request.method == "POST" and source and "mount" in call.request.query_params:
                # As distribution does: ask for the source's pull scope up front, so a
                # token client gets one token that can mount.
                call.also = (repository(source, "pull"),) if is_name(source) else ()
        if not route.deferred:
            await call.run(lambda: None)
        response = await route.handler(call)
        if not call.authorized:  # fail closed: a handler that skipped the check answers nothing
            raise RegistryError("request was not authorized")
        return response


def _route(path: str) -> tuple[str, str, str]:
    """(route kind, repository name, last path part) for a path under /v2."""
    if path in ("/v2", "/v2/"):
        return "base", "", ""
    if path in ("/v2/_catalog", "/v2/_catalog/"):
        return "catalog", "", ""
    match = _REPO_ROUTE.fullmatch(path)
    if match is None:
        raise Unsupported("unknown registry path", {"path": path[:300]}, status=404)
    name = match["name"]
    check_name(name)
    if match["uploads"]:
        return ("upload" if match["uuid"] else "uploads"), name, match["uuid"] or ""
    if match["tags"]:
        return "tags", name, ""
    return match["kind"], name, match["arg"]


class _Body:
    """The request body's progress, so that a request refused half-way (a full disk during an
    upload) can be read to its end before the answer: a client still sending a large body to
    a connection closed under it sees "connection reset", not the registry's error."""

    DRAIN_S = 120.0

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.done = False

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            self.done = True
        return message

    async def drain(self) -> None:
        """Read (and drop) what is left of the body, for at most `DRAIN_S` seconds."""
        with anyio.move_on_after(self.DRAIN_S):
            while not self.done:
                await self.receive()


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def create_app(registry: Registry, gate: RegistryGate) -> RegistryApp:
    """The ASGI app serving `/v2` (give it full paths, unchanged)."""
    return RegistryApp(registry, gate)


__all__ = ["RegistryApp", "create_app"]
