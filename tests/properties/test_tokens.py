"""Bearer tokens under Hypothesis, with PyJWT as the reference implementation: Baepo's verifier
never fails but by refusing, accepts only what PyJWT (asked for Baepo's checks) accepts, and
judges every token whose claims have the types Baepo writes as PyJWT does; what Baepo encodes
is, byte for byte, what PyJWT encodes."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import jwt
from hypothesis import HealthCheck, example, given, seed, settings
from hypothesis import strategies as st

from baepo.auth import bearer
from baepo.auth.access import Access, Principal

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KEY = b"k" * 64  # long enough for PyJWT's HS512 not to warn
SERVICE = "registry.test"
GOOD = {"iss": "baepo", "aud": SERVICE, "sub": "alice", "adm": False, "access": []}


def pyjwt_claims(token: str) -> dict[str, Any] | None:
    """The claims PyJWT finds in a token, checked as Baepo checks them, or None."""
    try:
        return jwt.decode(
            token,
            KEY,
            algorithms=["HS256"],
            audience=SERVICE,
            issuer="baepo",
            options={"require": ["exp"], "verify_iat": False},
        )
    except jwt.PyJWTError:
        return None


def principal_of(claims: dict[str, Any]) -> Principal:
    granted = tuple(
        Access(a["type"], a["name"], frozenset(a["actions"])) for a in claims.get("access", [])
    )
    return Principal(claims.get("sub", ""), claims.get("adm") is True, granted)


def now() -> datetime:
    return datetime.now(UTC)


def a_valid_token() -> str:
    return jwt.encode({**GOOD, "exp": int(time.time()) + 600}, KEY, algorithm="HS256")


TEXT = st.text(max_size=12)
ABSENT = object()
# Times as offsets from now, at least 5 s away from it: PyJWT reads the clock a little later.
FUTURE, PAST = st.integers(5, 10**7), st.integers(-(10**7), -5)
GRANT = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["repository", "registry", ""]),
        "name": TEXT,
        "actions": st.lists(TEXT, max_size=3),
    }
)
# What a claim may be changed to (ABSENT: no such claim), good or not.
CHANGES: dict[str, st.SearchStrategy[Any]] = {
    "iss": st.sampled_from(["Baepo", "", "other", ABSENT]),
    "aud": st.one_of(
        st.sampled_from(["other", "", ABSENT]),
        st.lists(st.sampled_from([SERVICE, "other", ""]), max_size=3),
    ),
    "exp": st.one_of(PAST, st.just(ABSENT)),
    "nbf": st.one_of(FUTURE, st.just(ABSENT)),
    "iat": st.one_of(FUTURE, st.just(ABSENT)),
    "sub": st.just(ABSENT),
    "jti": st.just(ABSENT),
    "adm": st.just(ABSENT),
    "access": st.just(ABSENT),
    "extra": st.one_of(st.integers(), TEXT, st.lists(TEXT, max_size=2)),
}


@st.composite
def claims_with_times(draw: st.DrawFn) -> dict[str, Any]:
    """Claims as Baepo writes them (times as offsets from now), a few of them changed."""
    claims: dict[str, Any] = {
        "iss": "baepo",
        "aud": SERVICE,
        "exp": draw(FUTURE),
        "nbf": draw(PAST),
        "iat": draw(PAST),
        "sub": draw(TEXT),
        "jti": draw(TEXT),
        "adm": draw(st.booleans()),
        "access": draw(st.lists(GRANT, max_size=3)),
    }
    for name in draw(st.sets(st.sampled_from(sorted(CHANGES)), max_size=3)):
        value = draw(CHANGES[name])
        if value is ABSENT:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


HEADERS = st.fixed_dictionaries(
    {"alg": st.sampled_from(["HS256", "HS256", "HS256", "HS384", "HS512", "none"])},
    optional={"kid": TEXT, "typ": st.sampled_from(["JWT", "at+jwt"])},
)


@seed(8)
@SETTINGS
@given(claims_with_times(), HEADERS)
@example({**GOOD, "exp": 600}, {"alg": "HS256"})
@example({**GOOD, "exp": 600, "aud": []}, {"alg": "HS256"})
@example({**GOOD, "exp": 600, "aud": [""]}, {"alg": "HS256"})
@example({**GOOD, "exp": 600, "nbf": 60}, {"alg": "HS256"})
@example({**GOOD, "exp": 600}, {"alg": "none"})
def test_a_token_pyjwt_makes_is_judged_as_pyjwt_judges_it(
    offsets: dict[str, Any], header: dict[str, Any]
) -> None:
    t = int(time.time())
    claims = {k: t + v if k in ("exp", "nbf", "iat") else v for k, v in offsets.items()}
    alg, others = header["alg"], {k: v for k, v in header.items() if k != "alg"}
    token = jwt.encode(claims, "" if alg == "none" else KEY, algorithm=alg, headers=others)
    expected = pyjwt_claims(token)
    found = bearer.verify(KEY, SERVICE, token, now())
    if expected is None:
        assert found is None
    else:
        assert found == principal_of(expected)


def mutations(token: str) -> st.SearchStrategy[str]:
    """`token` with one character replaced, deleted or inserted."""
    alphabet = st.one_of(st.sampled_from("AQgw_-.=+/ ey0"), st.characters())
    index = st.integers(0, len(token) - 1)
    return st.one_of(
        st.builds(lambda i, c: token[:i] + c + token[i + 1 :], index, alphabet),
        st.builds(lambda i: token[:i] + token[i + 1 :], index),
        st.builds(lambda i, c: token[:i] + c + token[i:], index, alphabet),
    )


@seed(8)
@SETTINGS
@given(st.one_of(st.text(max_size=300), st.text("abcXYZ019-_.=", max_size=300), st.data()))
@example("..")
@example("e30.e30.")
@example("eyJhbGciOiJIUzI1NiJ9.W10.")
def test_a_bearer_token_is_a_principal_or_refused(drawn: Any) -> None:
    """Any text, or a valid token with one character changed: Baepo never fails on it, and
    never accepts what PyJWT refuses."""
    token = drawn if isinstance(drawn, str) else drawn.draw(mutations(a_valid_token()))
    found = bearer.verify(KEY, SERVICE, token, now())
    if found is not None:
        expected = pyjwt_claims(token)
        assert expected is not None, token
        assert found == principal_of(expected)


JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=20,
)


@seed(8)
@SETTINGS
@given(st.dictionaries(st.text(max_size=10).filter(lambda k: k != "iss"), JSON_VALUE, max_size=6))
def test_what_baepo_encodes_is_what_pyjwt_encodes(claims: dict[str, Any]) -> None:
    token = bearer.encode(claims, KEY)
    assert token == jwt.encode(claims, KEY, algorithm="HS256")
    decoded = jwt.decode(
        token,
        KEY,
        algorithms=["HS256"],
        options={
            "verify_exp": False,
            "verify_nbf": False,
            "verify_iat": False,
            "verify_aud": False,
            "verify_sub": False,
            "verify_jti": False,
        },
    )
    assert decoded == claims
