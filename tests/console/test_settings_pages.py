"""The settings page over HTTP: API tokens (the secret shown once), users (an admin's), the
CA certificate; what the API refuses is shown beside its field, and nothing typed becomes
markup."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.api.rights_world import RightsWorld, bearer
from tests.console.conftest import signed_in
from tests.console.visitor import Visitor, text

SCRIPT = "<script>alert(1)</script>"


@pytest.fixture
def admin(world: RightsWorld) -> Visitor:
    return signed_in(world, "admin")


def error_of(page: httpx.Response, field: str) -> str:
    """The problem shown beside a form field (its control marked invalid)."""
    found = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', page.text)
    assert found, f"no problem beside {field}"
    assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', page.text), field
    return text(httpx.Response(200, text=found.group(1)))


def secret_on(page: httpx.Response) -> str:
    found = re.search(r'id="made-secret" value="([^"]+)" readonly', page.text)
    assert found, "no secret shown"
    return found.group(1)


def test_a_token_is_shown_once_works_and_is_revoked_after_asking(
    world: RightsWorld, alice: Visitor
) -> None:
    page = alice.get("/settings")
    assert page.status_code == 200 and 'aria-current="page">Settings' in page.text
    assert "(this session)" in text(page)
    made = alice.submit(
        "/settings/tokens", token_name="ci", token_repositories="alice/app, alice/site*"
    )
    assert made.status_code == 201
    secret = secret_on(made)
    assert "it is not shown again" in text(made)
    assert world.client.get("/api/v1/whoami", headers=bearer(secret)).json()["name"] == "alice"
    (token,) = [t for t in world.auth.tokens("alice") if t.name == "ci"]
    assert token.repositories == ("alice/app", "alice/site*")

    again = alice.get("/settings")
    assert secret not in again.text and "made-secret" not in again.text
    assert "ci repositories alice/app, alice/site*" in text(again)

    confirm = alice.get("/settings/tokens/ci/revoke")
    assert "Revoke token ci?" in text(confirm) and "is refused from now on" in text(confirm)
    answer = alice.submit("/settings/tokens/ci/revoke")
    assert answer.status_code == 303 and answer.headers["location"] == "/settings"
    assert world.client.get("/api/v1/whoami", headers=bearer(secret)).status_code == 401


def test_a_token_form_says_what_is_wrong_beside_the_field(
    world: RightsWorld, alice: Visitor
) -> None:
    alice.get("/settings")
    page = alice.submit("/settings/tokens", token_name=" ")
    assert page.status_code == 400 and error_of(page, "token_name") == "give the token a name"
    alice.submit("/settings/tokens", token_name="twice")
    page = alice.submit("/settings/tokens", token_name="twice", token_services="web")
    assert page.status_code == 409 and "already has a token named 'twice'" in error_of(
        page, "token_name"
    )
    assert 'value="web"' in page.text  # what was typed stays, to be corrected
    assert "made-secret" not in page.text


def test_a_token_named_with_markup_stays_text(world: RightsWorld, alice: Visitor) -> None:
    alice.get("/settings")
    made = alice.submit("/settings/tokens", token_name=SCRIPT)
    assert made.status_code == 201
    page = alice.get("/settings")
    assert SCRIPT not in made.text and SCRIPT not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    revoke = "/settings/tokens/%3Cscript%3Ealert%281%29%3C/script%3E/revoke"
    assert revoke in page.text
    assert SCRIPT not in alice.get(revoke).text
    assert alice.submit(revoke).status_code == 303
    assert SCRIPT not in [t.name for t in world.auth.tokens("alice")]


def test_revoking_the_sessions_own_token_signs_out(world: RightsWorld) -> None:
    carol = signed_in(world, "bob")
    (session,) = re.findall(r"<code>(console-[^<]+)</code> <span", carol.get("/settings").text)
    confirm = carol.get(f"/settings/tokens/{session}/revoke")
    assert "you will be signed out" in text(confirm)
    carol.submit(f"/settings/tokens/{session}/revoke")
    assert carol.get("/settings").headers["location"] == "/sign-in?next=/settings"


def test_an_admin_makes_and_deletes_users(world: RightsWorld, admin: Visitor) -> None:
    page = admin.get("/settings")
    assert re.search(r"alice user .* bob user", text(page))
    made = admin.submit("/settings/users", user_name="carol", user_password="carol-password-1")
    assert made.status_code == 303
    assert world.client.post(
        "/api/v1/login", json={"username": "carol", "password": "carol-password-1"}
    ).is_success
    assert "carol user" in text(admin.get("/settings"))

    confirm = admin.get("/settings/users/carol/delete")
    assert "Delete user carol?" in text(confirm)
    assert admin.submit("/settings/users/carol/delete").status_code == 303
    assert "carol" not in [u.name for u in world.auth.users()]


def test_a_user_form_says_what_is_wrong_beside_the_field(
    world: RightsWorld, admin: Visitor
) -> None:
    admin.get("/settings")
    page = admin.submit("/settings/users", user_name="dave", user_password="short")
    assert page.status_code == 422 and "at least 8 characters" in error_of(page, "user_password")
    assert 'value="dave"' in page.text and "short" not in page.text  # never the password
    page = admin.submit("/settings/users", user_name="alice", user_password="long-enough-1")
    assert page.status_code == 409 and "already exists" in error_of(page, "user_name")
    page = admin.submit("/settings/users", user_name=SCRIPT, user_password="long-enough-1")
    assert page.status_code == 400 and "invalid user name" in error_of(page, "user_name")
    assert SCRIPT not in page.text and "&lt;script&gt;" in page.text


def test_others_see_only_themselves(world: RightsWorld, alice: Visitor) -> None:
    page = alice.get("/settings")
    assert "alice (you) user" in text(page) and "bob" not in text(page)
    assert "New user" not in text(page) and "An admin makes and removes users" in text(page)
    refused = alice.submit("/settings/users", user_name="eve", user_password="eve-password-1")
    assert refused.status_code == 403 and "admin" in text(refused)
    assert alice.get("/settings/users/bob/delete").status_code == 200  # asking is harmless...
    assert alice.submit("/settings/users/bob/delete").status_code == 403  # ...the API refuses
    assert "bob" in [u.name for u in world.auth.users()]


def test_forms_without_the_sessions_token_are_refused(world: RightsWorld, alice: Visitor) -> None:
    for path, fields in [
        ("/settings/tokens", {"token_name": "forged"}),
        ("/settings/tokens/ci/revoke", {}),
        ("/settings/users", {"user_name": "x", "user_password": "x-password-1"}),
    ]:
        answer = alice.client.post(path, data={"csrf": "forged", **fields})
        assert answer.status_code == 403, path
    assert "forged" not in [t.name for t in world.auth.tokens("alice")]


def test_the_ca_certificate_is_there_to_download(world: RightsWorld, alice: Visitor) -> None:
    page = alice.get("/settings")
    assert 'href="/api/v1/ca" download="baepo-ca.crt"' in page.text
    pem = world.client.get("/api/v1/ca")
    assert pem.status_code == 200 and pem.text.startswith("-----BEGIN CERTIFICATE-----")


def test_an_access_key_is_made_for_a_token_shown_once_and_deleted(
    world: RightsWorld, alice: Visitor
) -> None:
    alice.get("/settings")
    page = alice.submit("/settings/tokens", token_name="aws")
    assert '<option value="aws">' in page.text
    assert '<option value="console-' not in page.text  # a session's token ends at sign-out
    made = alice.submit("/settings/access-keys", key_token="aws")
    assert made.status_code == 201 and "it is not shown again" in text(made)
    key_id = re.search(r'id="made-key-id" value="([^"]+)"', made.text)
    secret = re.search(r'id="made-key-secret" value="([^"]+)"', made.text)
    assert key_id and secret
    again = alice.get("/settings")
    assert secret.group(1) not in again.text and key_id.group(1) in again.text

    path = f"/settings/access-keys/{key_id.group(1)}/delete"
    assert "Delete access key" in text(alice.get(path))
    assert alice.submit(path).status_code == 303
    assert key_id.group(1) not in alice.get("/settings").text

    refused = alice.submit("/settings/access-keys", key_token="nothing")
    assert refused.status_code == 404 and "no token" in error_of(refused, "key_token").lower()
