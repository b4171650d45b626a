"""Registry bearer tokens (the Docker token spec's JWTs).

A token is a JWT signed with HS256 by a key kept in the state directory; it names its subject
and the exact `access` granted, e.g.
`{"sub": "ci", "aud": "baepo", "access": [{"type": "repository", "name": "team/app",
"actions": ["pull", "push"]}], "exp": ...}`. Tokens are short-lived (5 minutes by default):
clients fetch a new one when they get a 401, as the spec expects.
"""

from __future__ import annotations

import os
import secrets
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt

from baepo.auth.access import Access, Principal

ISSUER = "baepo"


def load_or_create_key(path: Path) -> bytes:
    """The signing key; created (0600) on first start and kept, so tokens survive restarts."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return key


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
