"""`/api/v1`: sign-in, users, tokens, errors as JSON with stable codes, the OpenAPI document."""

from __future__ import annotations

import secrets

import httpx
import pytest

from tests.conftest import BaepoProcess

pytestmark = pytest.mark.integration


def test_health_and_openapi(baepo_server: BaepoProcess) -> None:
    assert httpx.get(f"{baepo_server.url}/api/v1/health").json()["status"] == "ok"
    doc = httpx.get(f"{baepo_server.url}/api/v1/openapi.json").json()
    assert "/api/v1/registry/repositories" in doc["paths"]
    assert "/api/v1/tokens" in doc["paths"]


def test_login_returns_a_token_that_works_as_a_bearer(baepo_server: BaepoProcess) -> None:
    r = httpx.post(
        f"{baepo_server.url}/api/v1/login",
        json={"username": "admin", "password": baepo_server.password},
    )
    assert r.status_code == 200
    token = r.json()["token"]
    me = httpx.get(
        f"{baepo_server.url}/api/v1/whoami", headers={"Authorization": f"Bearer {token}"}
    )
    assert me.json()["name"] == "admin" and me.json()["is_admin"] is True


def test_text_with_a_nul_is_bad_input_on_every_state_database(
    baepo_server: BaepoProcess,
) -> None:
    """PostgreSQL cannot keep a NUL: refused at the edge, it is a 422 on SQLite as well."""
    with baepo_server.api() as admin:
        answers = [
            httpx.post(
                f"{baepo_server.url}/api/v1/login", json={"username": "a\x00", "password": "x"}
            ),
            admin.post("/api/v1/tokens", json={"name": "laptop", "scopes": ["a\x00"]}),
            admin.get("/api/v1/services/web%00"),
            admin.get("/api/v1/services", params={"owner": "a\x00"}),
        ]
        assert admin.post("/api/v1/tokens", json={"name": "fine"}).status_code == 201
    for answer in answers:
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["code"] == "INVALID_REQUEST"
    assert answers[1].json()["error"]["fields"] == [
        {"field": "scopes.0", "message": "must not hold a NUL character"}
    ]


def test_logout_revokes_the_token_it_is_signed_with(baepo_server: BaepoProcess) -> None:
    with baepo_server.api() as admin:
        token = admin.post(
            "/api/v1/login", json={"username": "admin", "password": baepo_server.password}
        ).json()["token"]
        basic = admin.post("/api/v1/logout")
        assert basic.status_code == 400 and basic.json()["error"]["code"] == "NOT_AN_API_TOKEN"
    bearer = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{baepo_server.url}/api/v1/whoami", headers=bearer).status_code == 200
    assert httpx.post(f"{baepo_server.url}/api/v1/logout", headers=bearer).status_code == 204
    assert httpx.get(f"{baepo_server.url}/api/v1/whoami", headers=bearer).status_code == 401
    assert httpx.post(f"{baepo_server.url}/api/v1/logout", headers=bearer).status_code == 401


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        (
            "POST",
            "/api/v1/login",
            {"json": {"username": "admin", "password": "x"}},
            401,
            "UNAUTHENTICATED",
        ),
        ("POST", "/api/v1/login", {"json": {"username": "admin"}}, 422, "INVALID_REQUEST"),
        ("POST", "/api/v1/login", {"content": b"{not json"}, 422, "INVALID_REQUEST"),
        ("GET", "/api/v1/users", {}, 401, "UNAUTHENTICATED"),
        (
            "GET",
            "/api/v1/users",
            {"headers": {"Authorization": "Bearer bp_nope"}},
            401,
            "UNAUTHENTICATED",
        ),
    ],
)
def test_errors_have_stable_codes(
    baepo_server: BaepoProcess,
    method: str,
    path: str,
    kwargs: dict[str, object],
    status: int,
    code: str,
) -> None:
    r = httpx.request(method, baepo_server.url + path, **kwargs)  # type: ignore[arg-type]
    assert r.status_code == status
    assert r.json()["error"]["code"] == code and r.json()["error"]["message"]


def test_users_and_their_namespaces(baepo_server: BaepoProcess) -> None:
    name = f"dev{secrets.token_hex(3)}"
    with baepo_server.api() as admin:
        r = admin.post("/api/v1/users", json={"name": name, "password": "dev-password-1"})
        assert r.status_code == 201, r.text
        again = admin.post("/api/v1/users", json={"name": name, "password": "dev-password-1"})
        assert again.status_code == 409 and again.json()["error"]["code"] == "ALREADY_EXISTS"
        bad = admin.post("/api/v1/users", json={"name": "Bad Name", "password": "password-1"})
        assert bad.status_code == 400
        assert name in [u["name"] for u in admin.get("/api/v1/users").json()]
    with httpx.Client(base_url=baepo_server.url, auth=(name, "dev-password-1")) as dev:
        assert dev.get("/api/v1/users").status_code == 403
        own = dev.post(f"/v2/{name}/app/blobs/uploads/")
        assert own.status_code == 202
        other = dev.post("/v2/team/app/blobs/uploads/")
        assert other.status_code == 403 and other.json()["errors"][0]["code"] == "DENIED"
        assert dev.post("/api/v1/registry/gc", json={"dry_run": True}).status_code == 403
    with baepo_server.api() as admin:
        assert admin.delete(f"/api/v1/users/{name}").status_code == 204
        assert admin.delete(f"/api/v1/users/{name}").status_code == 404
    assert httpx.get(f"{baepo_server.url}/v2/", auth=(name, "dev-password-1")).status_code == 401


def test_a_token_limited_to_a_repository_can_use_nothing_else(
    baepo_server: BaepoProcess,
) -> None:
    with baepo_server.api() as admin:
        made = admin.post(
            "/api/v1/tokens",
            json={"name": f"robot-{secrets.token_hex(3)}", "repositories": ["team/robot"]},
        )
        secret = made.json()["token"]
    bearer = {"Authorization": f"Bearer {secret}"}
    url = baepo_server.url
    # The registry, for its repository only (and no catalog).
    assert (
        httpx.post(f"{url}/v2/team/robot/blobs/uploads/", auth=("token", secret)).status_code == 202
    )
    assert (
        httpx.post(f"{url}/v2/team/other/blobs/uploads/", auth=("token", secret)).status_code == 403
    )
    assert httpx.get(f"{url}/v2/_catalog", auth=("token", secret)).status_code == 403
    # The API: no wider tokens, no sign-in, no users, no gc, no services, other repos hidden.
    for method, path, body in [
        ("POST", "/api/v1/tokens", {"name": "wider"}),
        (
            "POST",
            "/api/v1/users",
            {"name": "mallory", "password": "password-123", "is_admin": True},
        ),
        ("POST", "/api/v1/registry/gc", {"dry_run": True}),
        ("GET", "/api/v1/services", None),
        ("PUT", "/api/v1/registry/repositories/team/other/public", {"public": True}),
    ]:
        r = httpx.request(method, url + path, json=body, headers=bearer)
        assert r.status_code == 403, (path, r.text)
    login = httpx.post(f"{url}/api/v1/login", json={"username": "token", "password": secret})
    assert login.status_code == 401
