"""Registry bearer tokens (the Docker token spec's JWTs).

A token is a JWT signed with HS256 by a key kept in the state directory; it names its subject
and the exact `access` granted, e.g.
`{"sub": "ci", "aud": "baepo", "access": [{"type": "repository", "name": "team/app",
"actions": ["pull", "push"]}], "exp": ...}`. Tokens are short-lived (5 minutes by default):
clients fetch a new one when they get a 401, as the spec expects.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt

from baepo.auth.access import Access, Principal
from baepo.keyfiles import load_or_create

ISSUER = "baepo"


def load_or_create_key(path: Path) -> bytes:
    """The signing key; created (0600) on first start and kept, so tokens survive restarts."""
    return load_or_create(path, lambda: secrets.token_bytes(32))


def issue(
    key: bytes,
    service: str,
    principal: Principal,
    granted: list[Access],
    now: datetime,
    ttl: timedelta,
) -> str:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": principal.subject,
        "aud": service,
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()) - 5,
        "exp": int((now + ttl).timestamp()),
        "jti": secrets.token_hex(8),
        "adm": principal.is_admin,
        "access": [{"type": a.type, "name": a.name, "actions": sorted(a.actions)} for a in granted],
    }
    return jwt.encode(claims, key, algorithm="HS256")


def verify(key: bytes, service: str, token: str, now: datetime) -> Principal | None:
    """The principal a token speaks for, or None if it is forged, expired or malformed."""
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=["HS256"],
            audience=service,
            issuer=ISSUER,
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
        )
    except jwt.PyJWTError:
        return None
    ts = now.timestamp()
    if not isinstance(claims.get("exp"), int) or ts >= claims["exp"]:
        return None
    if isinstance(claims.get("nbf"), int) and ts < claims["nbf"]:
        return None
    granted: list[Access] = []
    for item in claims.get("access") or []:
        try:
            granted.append(Access(str(item["type"]), str(item["name"]), frozenset(item["actions"])))
        except (KeyError, TypeError):
            return None
    return Principal(str(claims.get("sub", "")), bool(claims.get("adm")), tuple(granted))
