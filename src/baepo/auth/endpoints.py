"""The token endpoint of the Docker token spec: `GET|POST /auth/token`.

`GET /auth/token?service=baepo&scope=repository:team/app:pull,push` with Basic credentials
(or none, for public pulls) answers `{"token", "access_token", "expires_in", "issued_at"}`.
`POST` accepts the OAuth2 form (`grant_type=password`, `username`, `password`, `scope`).
Wrong credentials get 401, too many of them from one address or for one account 429 with
`Retry-After` (`auth/throttle.py`); scopes the caller may not have are left out of the token, as the
spec says, and the registry then refuses the request that needed them.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from baepo.auth.access import Access, parse_scope
from baepo.auth.errors import AuthenticationRequired, AuthUnavailable, TooManyAttempts
from baepo.auth.service import Auth


def token_routes(auth: Auth, is_public: Callable[[str], bool]) -> list[Route]:
    async def token(request: Request) -> Response:
        authorization = request.headers.get("authorization")
        scopes = request.query_params.getlist("scope")
        if request.method == "POST":
            form = await request.form()
            scopes += [str(v) for v in form.getlist("scope")]
            if form.get("grant_type") == "password":
                basic = f"{form.get('username', '')}:{form.get('password', '')}"
                authorization = "Basic " + base64.b64encode(basic.encode()).decode()
        requested: list[Access] = []
        for text in scopes:
            for part in text.split():
                access = parse_scope(part)
                if access is not None:
                    requested.append(access)
        address = request.client.host if request.client else None
        try:
            value, ttl, issued = await run_in_threadpool(
                auth.issue_token, authorization, requested, is_public, address=address
            )
        except AuthUnavailable as exc:
            return _refusal(503, "UNAVAILABLE", exc, {})
        except TooManyAttempts as exc:
            return _refusal(429, "TOOMANYREQUESTS", exc, {"Retry-After": str(exc.retry_after)})
        except AuthenticationRequired as exc:
            challenge = {"WWW-Authenticate": f'Basic realm="{auth.service}"'}
            return _refusal(401, "UNAUTHORIZED", exc, challenge)
        return JSONResponse(
            {
                "token": value,
                "access_token": value,
                "expires_in": ttl,
                "issued_at": issued.isoformat().replace("+00:00", "Z"),
            }
        )

    return [Route("/auth/token", token, methods=["GET", "POST"])]


def _refusal(status: int, code: str, exc: Exception, headers: dict[str, str]) -> JSONResponse:
    """An error in the registry's shape (`{"errors": [...]}`), as clients of the spec read it."""
    body = {"errors": [{"code": code, "message": str(exc), "detail": None}]}
    return JSONResponse(body, status_code=status, headers=headers)
