"""Every request goes through the RegistryGate: what it is asked, and how refusals look."""

from __future__ import annotations

from typing import Any

import pytest

from baepo.auth.access import CATALOG, Access, repository
from baepo.registry import Registry, create_app

from .conftest import AllowAll, AppClient, TableGate
from .content import error_codes, push_blob, push_image, random_layer, sha256

ALICE = {"Authorization": "Basic alice"}
BOB = {"Authorization": "Basic bob"}


@pytest.fixture
def gate() -> TableGate:
    return TableGate(
        rights={
            "alice": {
                "repository:team/app:pull",
                "repository:team/app:push",
                "repository:team/app:delete",
                "repository:team/other:pull",
                "repository:team/other:push",
                "registry:catalog:*",
            },
            "bob": {"repository:team/app:pull"},
        }
    )


@pytest.fixture
def guarded(registry: Registry, gate: TableGate, make_client: Any) -> AppClient:
    return make_client(create_app(registry, gate))  # type: ignore[no-any-return]


@pytest.fixture
def admin(registry: Registry, make_client: Any) -> AppClient:
    return make_client(create_app(registry, AllowAll()))  # type: ignore[no-any-return]


def test_version_check_needs_credentials(guarded: AppClient) -> None:
    r = guarded.get("/v2/")
    assert r.status_code == 401
    assert error_codes(r) == ["UNAUTHORIZED"]
    assert r.headers["www-authenticate"] == (
        'Bearer realm="http://registry.test/auth/token",service="test"'
    )
    assert r.headers["docker-distribution-api-version"] == "registry/2.0"
    assert guarded.get("/v2/", headers=BOB).status_code == 200


def test_anonymous_pull_of_a_private_repository(guarded: AppClient, admin: AppClient) -> None:
    push_image(admin, "team/app", "v1")
    r = guarded.get("/v2/team/app/manifests/v1")
    assert r.status_code == 401 and error_codes(r) == ["UNAUTHORIZED"]
    assert 'scope="repository:team/app:pull"' in r.headers["www-authenticate"]
    assert guarded.get("/v2/team/app/manifests/v1", headers=BOB).status_code == 200


def test_push_without_the_right(guarded: AppClient) -> None:
    r = guarded.post("/v2/team/app/blobs/uploads/", headers=BOB)
    # RFC 6750: a valid credential without the scope is 403, with a challenge to upgrade.
    assert r.status_code == 403
    assert error_codes(r) == ["DENIED"]
    challenge = r.headers["www-authenticate"]
    assert 'scope="repository:team/app:pull,push"' in challenge
    assert 'error="insufficient_scope"' in challenge
    assert guarded.post("/v2/team/app/blobs/uploads/", headers=ALICE).status_code == 202


def test_public_repository_allows_anonymous_pull_only(
    guarded: AppClient, admin: AppClient, registry: Registry
) -> None:
    image = push_image(admin, "team/app", "v1")
    registry.set_public("team/app", True)
    assert guarded.get("/v2/team/app/manifests/v1").status_code == 200
    layer = image.layers[0].digest
    assert guarded.get(f"/v2/team/app/blobs/{layer}").status_code == 200
    assert guarded.get("/v2/team/app/tags/list").status_code == 200
    assert guarded.post("/v2/team/app/blobs/uploads/").status_code == 401
    assert guarded.delete(f"/v2/team/app/manifests/{image.manifest.digest}").status_code == 401
    registry.set_public("team/app", False)
    assert guarded.get("/v2/team/app/manifests/v1").status_code == 401


def test_the_gate_is_asked_for_the_right_scope(guarded: AppClient, gate: TableGate) -> None:
    digest = sha256(b"x")
    cases: list[tuple[str, str, Access]] = [
        ("GET", "/v2/_catalog", CATALOG),
        ("GET", "/v2/team/app/tags/list", repository("team/app", "pull")),
        ("HEAD", "/v2/team/app/manifests/v1", repository("team/app", "pull")),
        ("GET", f"/v2/team/app/blobs/{digest}", repository("team/app", "pull")),
        ("GET", f"/v2/team/app/referrers/{digest}", repository("team/app", "pull")),
        ("PUT", "/v2/team/app/manifests/v1", repository("team/app", "pull", "push")),
        ("POST", "/v2/team/app/blobs/uploads/", repository("team/app", "pull", "push")),
        ("PATCH", "/v2/team/app/blobs/uploads/abc", repository("team/app", "pull", "push")),
        ("DELETE", "/v2/team/app/manifests/v1", repository("team/app", "delete")),
        ("DELETE", f"/v2/team/app/blobs/{digest}", repository("team/app", "delete")),
    ]
    for method, path, wanted in cases:
        gate.calls.clear()
        guarded.request(method, path, headers=ALICE)
        assert gate.calls[0][:2] == ("Basic alice", wanted), (method, path)


def test_catalog_needs_the_catalog_scope(guarded: AppClient) -> None:
    assert guarded.get("/v2/_catalog", headers=BOB).status_code == 403
    assert guarded.get("/v2/_catalog", headers=ALICE).status_code == 200


def test_the_catalog_lists_only_what_the_caller_may_pull(
    guarded: AppClient, admin: AppClient, registry: Registry
) -> None:
    for repo in ("team/app", "team/hidden", "team/other", "team/open", "zz/secret"):
        push_image(admin, repo, "v1")
    registry.set_public("team/open", True)
    listed = guarded.get("/v2/_catalog", headers=ALICE)
    assert listed.json() == {"repositories": ["team/app", "team/open", "team/other"]}
    # Pages are pages of what the caller sees: never short, never a hidden name in a link.
    first = guarded.get("/v2/_catalog", params={"n": 2}, headers=ALICE)
    assert first.json() == {"repositories": ["team/app", "team/open"]}
    assert "last=team%2Fopen" in first.headers["link"]
    rest = guarded.get("/v2/_catalog", params={"n": 2, "last": "team/open"}, headers=ALICE)
    assert rest.json() == {"repositories": ["team/other"]}


def test_mount_needs_pull_on_the_source(guarded: AppClient, admin: AppClient) -> None:
    blob = random_layer()
    push_blob(admin, "team/secret", blob)
    push_blob(admin, "team/other", blob)
    params = {"mount": blob.digest, "from": "team/secret"}
    r = guarded.post("/v2/team/app/blobs/uploads/", params=params, headers=ALICE)
    assert r.status_code == 202  # no pull on team/secret: an upload instead of the blob
    assert guarded.head(f"/v2/team/app/blobs/{blob.digest}", headers=ALICE).status_code == 404
    params = {"mount": blob.digest, "from": "team/other"}
    r = guarded.post("/v2/team/app/blobs/uploads/", params=params, headers=ALICE)
    assert r.status_code == 201
    # Signed out, the challenge asks for both scopes, so one token can mount.
    r = guarded.post("/v2/team/app/blobs/uploads/", params=params)
    assert r.status_code == 401
    assert (
        'scope="repository:team/app:pull,push repository:team/other:pull"'
        in (r.headers["www-authenticate"])
    )


def test_the_actor_is_the_principal(registry: Registry, gate: TableGate, make_client: Any) -> None:
    as_alice = make_client(create_app(registry, gate), ALICE)
    push_image(as_alice, "team/app", "v1")
    assert registry.push_events("team/app")[0].actor == "alice"
