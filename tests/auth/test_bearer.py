"""Bearer tokens, checked against PyJWT as an independent implementation: what Baepo issues is
a JWT PyJWT verifies (byte for byte what PyJWT would make), and what PyJWT makes, valid or
not, Baepo judges as the Docker token spec and RFC 7515/7519 say."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from baepo.auth import bearer
from baepo.auth.access import Access, Principal

KEY = b"k" * 64  # long enough for PyJWT's HS512 not to warn
SERVICE = "registry.test"
ALICE = Principal("alice")
PUSH = Access("repository", "alice/app", frozenset({"pull", "push"}))


@pytest.fixture
def now() -> datetime:
    """Now, to the second: PyJWT checks exp and nbf against the real clock, so tokens are
    made when a test runs, with times at least 5 s away from it."""
    return datetime.now(UTC).replace(microsecond=0)


def claims(now: datetime, **changes: Any) -> dict[str, Any]:
    """Claims as `issue` writes them at `now`, with `changes` (None removes a claim)."""
    t = int(now.timestamp())
    base: dict[str, Any] = {
        "iss": "baepo",
        "sub": "alice",
        "aud": SERVICE,
        "iat": t,
        "nbf": t - 5,
        "exp": t + 300,
        "jti": "0123456789abcdef",
        "adm": False,
        "access": [{"type": "repository", "name": "alice/app", "actions": ["pull", "push"]}],
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def pyjwt_verify(token: str) -> dict[str, Any]:
    """PyJWT's judgement of a token now, with the checks Baepo makes."""
    return jwt.decode(
        token,
        KEY,
        algorithms=["HS256"],
        audience=SERVICE,
        issuer="baepo",
        options={"require": ["exp"], "verify_iat": False},
    )


def hs256(payload: dict[str, Any]) -> str:
    return jwt.encode(payload, KEY, algorithm="HS256")


def handmade(header: object, payload: dict[str, Any]) -> str:
    """A token signed with HMAC-SHA256 and the key whatever its header says (PyJWT would not
    write these headers)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = hmac.new(KEY, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_an_issued_token_is_the_jwt_pyjwt_makes_and_verifies(now: datetime) -> None:
    token = bearer.issue(KEY, SERVICE, ALICE, [PUSH], now, timedelta(minutes=5))
    decoded = pyjwt_verify(token)
    assert decoded == claims(now, jti=decoded["jti"])
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    assert token == hs256(decoded)
    assert bearer.verify(KEY, SERVICE, token, now) == Principal("alice", False, (PUSH,))


def test_a_token_pyjwt_makes_speaks_for_its_subject(now: datetime) -> None:
    admin = hs256(claims(now, sub="root", adm=True, access=[]))
    assert bearer.verify(KEY, SERVICE, admin, now) == Principal("root", True, ())
    # An audience list naming the service; header fields Baepo does not use (kid) are allowed.
    listed = jwt.encode(
        claims(now, aud=["other", SERVICE]), KEY, algorithm="HS256", headers={"kid": "k1"}
    )
    pyjwt_verify(listed)
    assert bearer.verify(KEY, SERVICE, listed, now) == Principal("alice", False, (PUSH,))
    # Claims Baepo does not write (iat, sub, jti, adm, access) are optional.
    bare = hs256({"iss": "baepo", "aud": SERVICE, "exp": int(now.timestamp()) + 60})
    pyjwt_verify(bare)
    assert bearer.verify(KEY, SERVICE, bare, now) == Principal("", False, ())


def test_expiry_and_not_before_are_exact(now: datetime) -> None:
    token = bearer.issue(KEY, SERVICE, ALICE, [PUSH], now, timedelta(minutes=5))
    assert bearer.verify(KEY, SERVICE, token, now + timedelta(seconds=299)) is not None
    assert bearer.verify(KEY, SERVICE, token, now + timedelta(seconds=300)) is None
    assert bearer.verify(KEY, SERVICE, token, now - timedelta(seconds=5)) is not None
    assert bearer.verify(KEY, SERVICE, token, now - timedelta(seconds=6)) is None


# Tokens made at a time `t` that PyJWT refuses, and so must Baepo.
REFUSED: dict[str, Callable[[datetime], str]] = {
    "another key": lambda t: jwt.encode(claims(t), b"x" * 64, algorithm="HS256"),
    "alg none": lambda t: jwt.encode(claims(t), "", algorithm="none"),
    "alg none signed": lambda t: jwt.encode(claims(t), "", algorithm="none") + "c2ln",
    "HS384": lambda t: jwt.encode(claims(t), KEY, algorithm="HS384"),
    "HS512": lambda t: jwt.encode(claims(t), KEY, algorithm="HS512"),
    "RS256": lambda t: jwt.encode(claims(t), rsa.generate_private_key(65537, 2048), "RS256"),
    "ES256": lambda t: jwt.encode(claims(t), ec.generate_private_key(ec.SECP256R1()), "ES256"),
    "alg in lower case": lambda t: handmade({"alg": "hs256"}, claims(t)),
    "alg missing": lambda t: handmade({"typ": "JWT"}, claims(t)),
    "alg a list": lambda t: handmade({"alg": ["HS256"]}, claims(t)),
    "crit": lambda t: handmade({"alg": "HS256", "crit": ["exp"]}, claims(t)),
    "empty crit": lambda t: handmade({"alg": "HS256", "crit": []}, claims(t)),
    "b64 false": lambda t: handmade({"alg": "HS256", "b64": False, "crit": ["b64"]}, claims(t)),
    "header a list": lambda t: handmade(["HS256"], claims(t)),
    "no exp": lambda t: hs256(claims(t, exp=None)),
    "expired": lambda t: hs256(claims(t, exp=int(t.timestamp()) - 5)),
    "not yet valid": lambda t: hs256(claims(t, nbf=int(t.timestamp()) + 60)),
    "no aud": lambda t: hs256(claims(t, aud=None)),
    "other aud": lambda t: hs256(claims(t, aud="other")),
    "aud list without it": lambda t: hs256(claims(t, aud=["other"])),
    "aud list with a number": lambda t: hs256(claims(t, aud=[SERVICE, 1])),
    "aud an object": lambda t: hs256(claims(t, aud={SERVICE: 1})),
    "no iss": lambda t: hs256(claims(t, iss=None)),
    "other iss": lambda t: hs256(claims(t, iss="other")),
    "sub a number": lambda t: hs256(claims(t, sub=7)),
    "jti a number": lambda t: hs256(claims(t, jti=7)),
}


@pytest.mark.parametrize("make", REFUSED.values(), ids=REFUSED.keys())
def test_tokens_pyjwt_refuses_are_refused(make: Callable[[datetime], str], now: datetime) -> None:
    token = make(now)
    with pytest.raises(jwt.PyJWTError):
        pyjwt_verify(token)
    assert bearer.verify(KEY, SERVICE, token, now) is None


# Claims (at a time `t`, in seconds) PyJWT accepts, reading a numeric string or a float as a
# time, or not checking them at all; Baepo never writes such claims, so it refuses them.
OTHER_TYPES: dict[str, Callable[[int], dict[str, Any]]] = {
    "exp a float": lambda t: {"exp": t + 300.5},
    "exp a string": lambda t: {"exp": str(t + 300)},
    "nbf a float": lambda t: {"nbf": t - 0.5},
    "nbf a string": lambda t: {"nbf": str(t - 5)},
    "adm a string": lambda t: {"adm": "false"},
    "adm a number": lambda t: {"adm": 1},
}


@pytest.mark.parametrize("changes", OTHER_TYPES.values(), ids=OTHER_TYPES.keys())
def test_claims_of_another_type_than_issued_are_refused(
    changes: Callable[[int], dict[str, Any]], now: datetime
) -> None:
    token = hs256(claims(now, **changes(int(now.timestamp()))))
    pyjwt_verify(token)
    assert bearer.verify(KEY, SERVICE, token, now) is None


@pytest.mark.parametrize(
    "access",
    [
        {"type": "repository", "name": "a", "actions": ["pull"]},  # not a list
        7,
        "repository:a:pull",
        [7],
        [{"name": "a", "actions": ["pull"]}],
        [{"type": "repository", "name": 1, "actions": ["pull"]}],
        [{"type": "repository", "name": "a", "actions": "pull"}],  # a string is no list
        [{"type": "repository", "name": "a", "actions": [["pull"]]}],
    ],
)
def test_a_signed_token_with_a_malformed_grant_is_refused(access: object, now: datetime) -> None:
    token = hs256(claims(now, access=access))
    assert bearer.verify(KEY, SERVICE, token, now) is None


def test_a_tampered_token_is_refused(now: datetime) -> None:
    token = bearer.issue(KEY, SERVICE, ALICE, [PUSH], now, timedelta(minutes=5))
    header, payload, signature = token.split(".")
    admin = b64(json.dumps(claims(now, adm=True)).encode())
    none = b64(b'{"alg":"none","typ":"JWT"}')
    standard = base64.b64encode(base64.urlsafe_b64decode(signature + "=")).decode()
    for forged in (
        f"{header}.{admin}.{signature}",  # claims changed, signature kept
        f"{none}.{payload}.",  # alg none without a signature
        f"{none}.{payload}.{signature}",  # alg none with the genuine signature
        f"{header}.{payload}.",  # signature stripped
        f"{header}.{payload}.{signature[:-2]}",  # signature truncated
        f"{header}.{payload}.{signature}=",  # padded
        f"{header}.{payload}.{standard}",  # base64, not base64url
        f"{header}.{payload}.{signature}.",  # a fourth segment
        f"{header}.{payload}",
        f" {header}.{payload}.{signature}",
        f"{header}.{payload}.{signature}\n",
        f"{header}.{payload}é.{signature}",
        "",
        "..",
        "not.a.jwt",
    ):
        assert bearer.verify(KEY, SERVICE, forged, now) is None, forged
    assert bearer.verify(KEY, SERVICE, token, now) is not None


def test_a_non_canonical_signature_is_refused(now: datetime) -> None:
    """Base64url spellings that decode to the same bytes: only the canonical one passes (the
    last character of a 32-byte signature carries 2 unused bits)."""
    token = bearer.issue(KEY, SERVICE, ALICE, [], now, timedelta(minutes=5))
    signed, _, signature = token.rpartition(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(signature[-1])
    twins = [c for i, c in enumerate(alphabet) if i >> 2 == last >> 2 and i != last]
    assert len(twins) == 3
    for twin in twins:
        assert bearer.verify(KEY, SERVICE, f"{signed}.{signature[:-1]}{twin}", now) is None
    assert bearer.verify(KEY, SERVICE, token, now) is not None


def test_the_token_module_imports_no_jwt_library() -> None:
    """Issuing and verifying tokens loads neither PyJWT nor `cryptography` (megabytes)."""
    program = (
        "import sys\n"
        "from datetime import UTC, datetime, timedelta\n"
        "from baepo.auth import bearer\n"
        "from baepo.auth.access import Principal\n"
        "now = datetime.now(UTC)\n"
        "token = bearer.issue(b'k' * 32, 's', Principal('a'), [], now, timedelta(minutes=5))\n"
        "assert bearer.verify(b'k' * 32, 's', token, now) == Principal('a')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'jwt', 'cryptography'}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
