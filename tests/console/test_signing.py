"""Signing in and out of the console: a session is an API token made by the API's login, held
in an HttpOnly cookie, revoked at sign-out; every form needs its session's CSRF token."""

from __future__ import annotations

import re

import httpx
import pytest

from baepo.console.sessions import SESSION_S
from tests.api.rights_world import PASSWORDS, RightsWorld
from tests.console.conftest import signed_in
from tests.console.visitor import Visitor, text


def console_tokens(world: RightsWorld, user: str) -> list[str]:
    return [t.name for t in world.auth.tokens(user) if t.name.startswith("console-")]


def cookie_lines(response: httpx.Response) -> list[str]:
    return response.headers.get_list("set-cookie")


def test_pages_send_a_stranger_to_sign_in_and_back(world: RightsWorld) -> None:
    visitor = Visitor(world.client.app)
    assert visitor.get("/").headers["location"] == "/sign-in"
    assert visitor.get("/services/app").headers["location"] == "/sign-in?next=/services/app"
    assert visitor.get("/new").headers["location"] == "/sign-in?next=/new"
    # An htmx request is told where to go instead (it would swap the sign-in page in).
    polled = visitor.client.get("/services/app", headers={"HX-Request": "true"})
    assert polled.headers["HX-Redirect"] == "/sign-in?next=/services/app"

    answer = visitor.sign_in("alice", PASSWORDS["alice"], next="/new")
    assert answer.status_code == 303 and answer.headers["location"] == "/new"
    assert "Create service" in text(visitor.get("/new"))


def test_signing_in_makes_an_api_token_kept_in_an_http_only_cookie(world: RightsWorld) -> None:
    before = console_tokens(world, "alice")
    visitor = Visitor(world.client.app)
    form = visitor.get("/sign-in")
    assert any("baepo-signin=" in line for line in cookie_lines(form))
    answer = visitor.submit("/sign-in", username="alice", password=PASSWORDS["alice"], next="/")
    assert answer.status_code == 303
    (made,) = set(console_tokens(world, "alice")) - set(before)
    (session,) = [line for line in cookie_lines(answer) if line.startswith("baepo-session=")]
    assert f".{made};" in session  # the token's name rides along, to revoke it
    assert "httponly" in session.lower() and "samesite=lax" in session.lower()
    assert f"max-age={SESSION_S}" in session.lower()
    assert "secure" not in session.lower()  # plain HTTP: a Secure cookie would never come back
    assert "alice" in text(visitor.get("/"))


def test_over_https_the_cookies_are_secure_and_host_only(world: RightsWorld) -> None:
    """`__Host-` cookies: a service at another host of the domain cannot plant one."""
    visitor = Visitor(world.client.app, base_url="https://registry.localhost")
    form = visitor.get("/sign-in")
    (nonce,) = cookie_lines(form)
    assert nonce.startswith("__Host-baepo-signin=") and "secure" in nonce.lower()
    answer = visitor.submit("/sign-in", username="bob", password=PASSWORDS["bob"], next="/")
    (session,) = [c for c in cookie_lines(answer) if c.startswith("__Host-baepo-session=")]
    assert "secure" in session.lower() and "httponly" in session.lower()
    (ended,) = [c for c in cookie_lines(answer) if c.startswith("__Host-baepo-signin=")]
    assert "max-age=0" in ended.lower() and "secure" in ended.lower()  # else a browser keeps it
    assert "path=/" in session.lower() and "domain" not in session.lower()
    assert "bob" in text(visitor.get("/"))


@pytest.mark.parametrize(
    ("username", "password"),
    [("alice", "wrong-password-1"), ("nobody", "whatever-password"), ("alice", "")],
)
def test_a_failed_sign_in_says_so_and_keeps_the_name(
    world: RightsWorld, username: str, password: str
) -> None:
    visitor = Visitor(world.client.app)
    answer = visitor.sign_in(username, password)
    assert answer.status_code == 401
    assert "Wrong user name or password." in text(answer)
    assert f'value="{username}"' in answer.text
    assert not any("baepo-session=" in line for line in cookie_lines(answer))


def test_failed_sign_ins_count_per_browser_as_the_apis_do(world: RightsWorld) -> None:
    """The API's throttle (docs/limits.md) sees each browser's address, not the console's."""
    flooder = Visitor(world.client.app, address="192.0.2.10")
    answers = [flooder.sign_in(f"nobody-{i}", "wrong-password") for i in range(11)]
    assert [a.status_code for a in answers] == [401] * 10 + [429]
    assert re.search(r"Too many failed sign-ins: try again in \d+ s\.", text(answers[-1]))
    # Refused before the password is checked, from this address only.
    assert flooder.sign_in("alice", "wrong-again").status_code == 429
    other = Visitor(world.client.app, address="192.0.2.11")
    assert other.sign_in("alice", "wrong-again").status_code == 401


def test_a_sign_in_form_from_elsewhere_is_refused(world: RightsWorld) -> None:
    """Login CSRF: a page of another site cannot sign a visitor in as someone else."""
    visitor = Visitor(world.client.app)
    visitor.get("/sign-in")
    fields = {"username": "bob", "password": PASSWORDS["bob"], "next": "/"}
    for csrf in ("", "forged"):
        answer = visitor.client.post("/sign-in", data={"csrf": csrf, **fields})
        assert answer.status_code == 403 and "expired" in text(answer)
    # Another browser's token is worth nothing without that browser's cookie.
    other = Visitor(world.client.app)
    other.get("/sign-in")
    answer = visitor.client.post("/sign-in", data={"csrf": other.csrf, **fields})
    assert answer.status_code == 403
    # A right token, but posted from another origin.
    answer = visitor.client.post(
        "/sign-in", data={"csrf": visitor.csrf, **fields}, headers={"Origin": "http://evil.test"}
    )
    assert answer.status_code == 403
    assert not any("baepo-session=" in line for line in cookie_lines(answer))


@pytest.mark.parametrize("target", ["//evil.test/", "https://evil.test/", "/\\evil.test", ""])
def test_after_signing_in_a_visitor_stays_on_this_site(world: RightsWorld, target: str) -> None:
    answer = Visitor(world.client.app).sign_in("alice", PASSWORDS["alice"], next=target)
    assert answer.headers["location"] == "/"


def test_signing_out_revokes_the_token(world: RightsWorld) -> None:
    visitor = signed_in(world, "alice")
    visitor.get("/")
    (session,) = [c for c in visitor.client.cookies.jar if c.name == "baepo-session"]
    assert session.value is not None
    token, _, name = session.value.partition(".")
    assert name in console_tokens(world, "alice")

    refused = visitor.client.post("/sign-out", data={"csrf": "forged"})
    assert refused.status_code == 403 and name in console_tokens(world, "alice")

    answer = visitor.submit("/sign-out")
    assert answer.status_code == 303 and answer.headers["location"] == "/sign-in"
    assert name not in console_tokens(world, "alice")
    assert visitor.get("/").headers["location"] == "/sign-in"
    bearer = {"Authorization": f"Bearer {token}"}
    assert world.client.get("/api/v1/whoami", headers=bearer).status_code == 401


def test_a_token_revoked_elsewhere_ends_the_session(world: RightsWorld) -> None:
    """`baepo tokens rm console-…` signs that browser out at its next click."""
    before = set(console_tokens(world, "bob"))
    visitor = signed_in(world, "bob")
    (name,) = set(console_tokens(world, "bob")) - before
    world.auth.delete_token("bob", name)
    answer = visitor.get("/")
    assert answer.headers["location"] == "/sign-in"
    assert any(line.startswith('baepo-session=""') for line in cookie_lines(answer))


def test_signing_in_revokes_the_users_console_tokens_older_than_a_session(
    world: RightsWorld,
) -> None:
    world.auth.create_token("alice", "console-old")
    world.auth.create_token("alice", "cli-old")
    world.clock.advance(SESSION_S + 1)
    world.auth.create_token("alice", "console-recent")
    signed_in(world, "alice")
    names = {t.name for t in world.auth.tokens("alice")}
    assert "console-old" not in names
    assert {"cli-old", "console-recent"} <= names


def test_pages_tell_the_browser_to_run_nothing_foreign(alice: Visitor) -> None:
    for path in ("/", "/new", "/sign-in"):
        page = alice.client.get(path, follow_redirects=True)
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["x-content-type-options"] == "nosniff"


def test_assets_are_served_and_the_api_keeps_its_json_404(world: RightsWorld) -> None:
    for path, kind in [
        ("/static/htmx.min.js", "javascript"),
        ("/static/console.css", "text/css"),
        ("/static/favicon.svg", "image/svg+xml"),
    ]:
        asset = world.client.get(path)
        assert asset.status_code == 200 and kind in asset.headers["content-type"], path
    for path in ("/api/v1/nope", "/api/nope", "/static/nope.js"):
        missing = world.client.get(path)
        assert missing.status_code == 404, path
    assert world.client.get("/api/v1/nope").json()["error"]["code"] == "NOT_FOUND"
    paths = world.client.get("/api/v1/openapi.json").json()["paths"]
    assert not [p for p in paths if not p.startswith(("/api/", "/hooks/", "/auth/", "/metrics"))]
