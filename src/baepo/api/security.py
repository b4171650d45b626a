"""Who is calling the API: `Authorization: Bearer <API token>` or Basic user:password."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from baepo.api.errors import ApiError
from baepo.auth import Auth, AuthenticationRequired, Principal


@dataclass(frozen=True)
class Identity:
    name: str
    is_admin: bool


async def identify(request: Request, auth: Auth) -> Identity:
    header = request.headers.get("authorization")
    if not header:
        raise ApiError(401, "UNAUTHENTICATED", "sign in first: baepo login (or set BAEPO_TOKEN)")
    try:
        who = await run_in_threadpool(auth.caller_from_header, header)
    except AuthenticationRequired as exc:
        raise ApiError(401, "UNAUTHENTICATED", str(exc)) from exc
    if who is None or isinstance(who, Principal):
        raise ApiError(401, "UNAUTHENTICATED", "use an API token or a password")
    return Identity(who.name, who.is_admin)


def require_admin(who: Identity) -> None:
    if not who.is_admin:
        raise ApiError(403, "FORBIDDEN", "only an admin may do this")
