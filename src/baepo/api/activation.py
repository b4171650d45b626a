"""Baepo's internal endpoint for the router's activator: "requests of this service wait".

HAProxy's activator (`baepo/router/activator.lua`) holds a request to a service with no ready
instance (scaled to zero) and posts, at most once a second per service while requests wait:

    POST /internal/activate?service=<name>
    Authorization: Bearer <the secret of the activator's token file>
    → 204                          noted: the autoscaler wants an instance, the reconciler wakes
    → 401 UNAUTHORIZED             no or another secret
    → 400 INVALID_REQUEST          no service named

Not part of the public API (absent from OpenAPI). The secret is a random value Baepo keeps in a
0600 file of its secrets directory and hands to the router, which reads it when it loads the
script; the registry host's proxy reaches this path too, so the secret is what guards it. The
answer is cheap and never waits on the database: a held request's latency includes it.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from baepo.router import ACTIVATE_PATH

MAX_NAME = 100


def activation_routes(secret: str, activate: Callable[[str], None]) -> list[Route]:
    """The route that calls `activate(service)` (non-blocking) for the activator."""
    expected = f"Bearer {secret}".encode()

    async def activation(request: Request) -> Response:
        presented = request.headers.get("authorization", "").encode()
        if not secret or not hmac.compare_digest(presented, expected):
            return _error(401, "UNAUTHORIZED", "the activator's secret is required")
        service = request.query_params.get("service", "")
        if not service or len(service) > MAX_NAME:
            return _error(400, "INVALID_REQUEST", "a service name is required (?service=)")
        activate(service)
        return Response(status_code=204)

    return [Route(ACTIVATE_PATH, activation, methods=["POST"], include_in_schema=False)]


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)
