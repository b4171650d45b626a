"""`baepo access-keys …` and `/api/v1/access-keys` against a real server: a key for the token
in use, listed without its secret, revoked; a limited token manages its own keys only."""

from __future__ import annotations

import json
import secrets

import httpx
import pytest

from tests.cli.command import baepo
from tests.conftest import BaepoProcess

pytestmark = pytest.mark.integration


def test_create_list_and_revoke_a_key(cli_env: dict[str, str]) -> None:
    made = baepo("access-keys", "create", env=cli_env)
    assert made.returncode == 0, made.stderr
    lines = dict(line.split("=", 1) for line in made.stdout.splitlines())
    key_id, secret = lines["AWS_ACCESS_KEY_ID"], lines["AWS_SECRET_ACCESS_KEY"]
    assert key_id.startswith("BKIA") and len(secret) == 40
    assert "not shown again" in made.stderr

    listed = json.loads(baepo("access-keys", "ls", "--json", env=cli_env).stdout)
    mine = [k for k in listed if k["access_key_id"] == key_id]
    assert len(mine) == 1 and mine[0]["secret_access_key"] is None
    assert mine[0]["token"].startswith("cli-")

    gone = baepo("access-keys", "rm", key_id, env=cli_env)
    assert gone.returncode == 0 and f"revoked access key {key_id}" in gone.stdout
    again = baepo("access-keys", "rm", key_id, env=cli_env)
    assert again.returncode != 0 and "no access key" in again.stderr


def test_a_key_for_another_token_and_a_limited_tokens_own(baepo_server: BaepoProcess) -> None:
    name = f"ci-{secrets.token_hex(3)}"
    with baepo_server.api() as admin:
        limited = admin.post("/api/v1/tokens", json={"name": name, "repositories": ["admin/x"]})
        assert limited.status_code == 201, limited.text
        # A password caller names the token; without one there is nothing to attach to.
        assert admin.post("/api/v1/access-keys", json={}).status_code == 400
        for_ci = admin.post("/api/v1/access-keys", json={"token": name})
        assert for_ci.status_code == 201 and for_ci.json()["token"] == name
        assert admin.post("/api/v1/access-keys", json={"token": "nope"}).status_code == 404
    headers = {"Authorization": f"Bearer {limited.json()['token']}"}
    with httpx.Client(base_url=baepo_server.url, headers=headers) as ci:
        own = ci.post("/api/v1/access-keys", json={})
        assert own.status_code == 201 and own.json()["token"] == name
        other = ci.post("/api/v1/access-keys", json={"token": "engine"})
        assert other.status_code == 403
        seen = {k["access_key_id"] for k in ci.get("/api/v1/access-keys").json()}
        assert seen == {for_ci.json()["access_key_id"], own.json()["access_key_id"]}
        assert ci.delete(f"/api/v1/access-keys/{own.json()['access_key_id']}").status_code == 204
    with baepo_server.api() as admin:
        assert admin.delete(f"/api/v1/tokens/{name}").status_code == 204
        left = {k["access_key_id"] for k in admin.get("/api/v1/access-keys").json()}
        assert for_ci.json()["access_key_id"] not in left
