"""Registry bearer tokens (the Docker token spec's JWTs).

A token is a JWT signed with HS256 by a key kept in the state directory; it names its subject
and the exact `access` granted, e.g.
`{"sub": "ci", "aud": "baepo", "access": [{"type": "repository", "name": "team/app",
"actions": ["pull", "push"]}], "exp": ...}`. Tokens are short-lived (5 minutes by default):
clients fetch a new one when they get a 401, as the spec expects.

HS256 is the only algorithm Baepo signs or accepts, so the JWT is written here on the standard
library (a JWT library imports `cryptography` for algorithms Baepo never uses: megabytes of
memory in a server that would only ever call HMAC). The compact form (RFC 7515 §7.1):

    BASE64URL(header) "." BASE64URL(claims) "." BASE64URL(HMAC-SHA256(key, the first two parts))
    header = {"alg":"HS256","typ":"JWT"}     claims as in `issue` (compact JSON, like PyJWT's)

`verify` accepts a token only if all of these hold, and otherwise returns None (never raises):

    form        three segments of unpadded, canonical base64url; header and claims JSON objects
    header      "alg" exactly "HS256" (not "none", not another algorithm, not a missing one);
                no "crit" (RFC 7515 §4.1.11: Baepo understands no extension), no "b64": false
    signature   HMAC-SHA256 with the key, compared in constant time
    claims      "iss" is "baepo"; "aud" is the service, or a list of strings naming it;
                "exp" an integer later than now; "nbf", if present, an integer not after now
                (no leeway: `issue` sets nbf 5 s early); "sub" and "jti", if present, strings;
                "adm", if present, a boolean; "access" a list of
                {"type": str, "name": str, "actions": [str, ...]}
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from baepo.auth.access import Access, Principal
from baepo.keyfiles import load_or_create

ISSUER = "baepo"
ALGORITHM = "HS256"
_HEADER = {"alg": ALGORITHM, "typ": "JWT"}
_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")


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
    return encode(claims, key)


def encode(claims: dict[str, Any], key: bytes) -> str:
    """`claims` as an HS256 JWT (the same bytes PyJWT's `encode` makes of them)."""
    header = _b64encode(_json(_HEADER, sort_keys=True))
    payload = _b64encode(_json(claims))
    signing_input = f"{header}.{payload}"
    return f"{signing_input}.{_b64encode(_sign(key, signing_input))}"


def verify(key: bytes, service: str, token: str, now: datetime) -> Principal | None:
    """The principal a token speaks for, or None if it is forged, expired or malformed."""
    claims = _signed_claims(key, token)
    if claims is None or not _claims_hold(claims, service, now.timestamp()):
        return None
    granted = _access(claims.get("access"))
    if granted is None:
        return None
    return Principal(claims.get("sub", ""), claims.get("adm") is True, granted)


def _signed_claims(key: bytes, token: str) -> dict[str, Any] | None:
    """The claims of a token whose form, header and signature are good (see the module doc),
    or None. The claims themselves are checked by the caller."""
    segments = token.split(".")
    if len(segments) != 3:
        return None
    header_segment, payload_segment, _ = segments
    header, payload, signature = (_b64decode(s) for s in segments)
    if payload is None or signature is None:
        return None
    fields = _json_object(header)
    if fields is None or fields.get("alg") != ALGORITHM:
        return None
    if "crit" in fields or fields.get("b64", True) is not True:
        return None
    expected = _sign(key, f"{header_segment}.{payload_segment}")
    if not hmac.compare_digest(signature, expected):
        return None
    return _json_object(payload)


def _claims_hold(claims: dict[str, Any], service: str, now: float) -> bool:
    if claims.get("iss") != ISSUER:
        return False
    audience = claims.get("aud")
    if isinstance(audience, str):
        audience = [audience]
    if not isinstance(audience, list) or not all(isinstance(a, str) for a in audience):
        return False
    if service not in audience:
        return False
    expires = _integer(claims.get("exp"))
    if expires is None or now >= expires:
        return False
    if "nbf" in claims:
        not_before = _integer(claims["nbf"])
        if not_before is None or now < not_before:
            return False
    for name in ("sub", "jti"):
        if name in claims and not isinstance(claims[name], str):
            return False
    return "adm" not in claims or isinstance(claims["adm"], bool)


def _access(value: object) -> tuple[Access, ...] | None:
    """The `access` claim's grants, or None if it is not a list of well-formed grants."""
    if value is None:
        return ()
    if not isinstance(value, list):
        return None
    granted = []
    for item in value:
        if not isinstance(item, dict):
            return None
        kind, name, actions = item.get("type"), item.get("name"), item.get("actions")
        if not isinstance(kind, str) or not isinstance(name, str):
            return None
        if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
            return None
        granted.append(Access(kind, name, frozenset(actions)))
    return tuple(granted)


def _integer(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _sign(key: bytes, signing_input: str) -> bytes:
    return hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest()


def _json(value: dict[str, Any], sort_keys: bool = False) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=sort_keys).encode()


def _json_object(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    return value if isinstance(value, dict) else None


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(segment: str) -> bytes | None:
    """Unpadded base64url, in its one canonical spelling (no padding, no stray characters,
    no set bits past the last byte), or None."""
    if not _SEGMENT.fullmatch(segment) or len(segment) % 4 == 1:
        return None
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if _b64encode(raw) == segment else None
