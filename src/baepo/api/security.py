"""Who is calling the API: `Authorization: Bearer <API token>` or Basic user:password."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from baepo.api.errors import ApiError
from baepo.auth import Auth, AuthenticationRequired, Principal, TooManyAttempts
from baepo.auth.rights import Caller


@dataclass(frozen=True)
class Identity:
    name: str
    is_admin: bool
    repositories: tuple[str, ...] = ()
    """An API token's limit: it may use the registry for these repositories and nothing else."""
    services: tuple[str, ...] = ()
    """An API token's limit: it may read and deploy these services and nothing else."""
    token: int | None = None
    """The API token the caller signed in with (its id); None for a password."""

    @property
    def limited(self) -> bool:
        return bool(self.repositories or self.services)

    @property
    def rights(self) -> Caller:
        """The caller as the auth room's rights see it."""
        return Caller(self.name, self.is_admin, self.repositories, self.services, self.token)

    def limits(self) -> str:
        """What a limited token is limited to, in words."""
        parts = []
        if self.repositories:
            parts.append(f"repositories ({', '.join(self.repositories)})")
        if self.services:
            parts.append(f"services ({', '.join(self.services)})")
        return " and ".join(parts)


async def identify(request: Request, auth: Auth) -> Identity:
    header = request.headers.get("authorization")
    if not header:
        raise ApiError(401, "UNAUTHENTICATED", "sign in first: baepo login (or set BAEPO_TOKEN)")
    address = request.client.host if request.client else None
    try:
        who = await run_in_threadpool(auth.caller_from_header, header, address=address)
    except TooManyAttempts:
        raise  # 429 with Retry-After (errors.py)
    except AuthenticationRequired as exc:
        raise ApiError(401, "UNAUTHENTICATED", str(exc)) from exc
    if who is None or isinstance(who, Principal):
        raise ApiError(401, "UNAUTHENTICATED", "use an API token or a password")
    return Identity(who.name, who.is_admin, who.repositories, who.services, who.token)


def require_admin(who: Identity) -> None:
    require_unlimited(who)
    if not who.is_admin:
        raise ApiError(403, "FORBIDDEN", "only an admin may do this")


def require_unlimited(who: Identity) -> None:
    """Refuse limited API tokens: they may only use what they are limited to."""
    if who.limited:
        raise ApiError(
            403,
            "FORBIDDEN",
            f"this API token is limited to {who.limits()} and may not do this",
        )
