"""Who may do what to a service: every caller by every services endpoint → the status expected.

Callers: an admin; alice, who owns the service `app`; bob, another user; nobody signed in;
alice's API tokens: unlimited, limited to a repository, limited to the service `app`, limited
to another service. A service a caller does not reach answers 404 as if it did not exist; an
action a caller may not take on services at all answers 403; a refused request stores nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from baepo.control import ServiceNotFound, SpecChange
from tests.api.rights_world import REGISTRY, RightsWorld, basic, bearer, build

CALLERS = (
    "admin",
    "alice",
    "bob",
    "anonymous",
    "alice-token",
    "repo-token",
    "app-token",
    "other-token",
)
OWNERS = ("admin", "alice", "alice-token")  # may do everything to alice's `app`


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RightsWorld]:
    for world in build(tmp_path_factory.mktemp("rights")):
        for user in ("admin", "alice", "bob"):
            world.headers[user] = basic(user)
        tokens = {
            "alice-token": {},
            "repo-token": {"repositories": ("alice/app",)},
            "app-token": {"services": ("app",)},
            "other-token": {"services": ("other",)},
        }
        for name, limits in tokens.items():
            world.headers[name] = bearer(world.token("alice", name, **limits))
        yield world


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str
    body: dict[str, Any] | None = None
    paused: bool = False  # the service is paused first
    kind: str = "change"  # read, deploy, create, change

    @property
    def ok(self) -> int:
        return {"read": 200, "create": 202}.get(self.kind, 202)


S = "/api/v1/services"
ENDPOINTS = [
    Endpoint("list", "GET", S, kind="read"),
    Endpoint(
        "create", "POST", S, {"name": "made", "image": f"{REGISTRY}/alice/app:1"}, kind="create"
    ),
    Endpoint("describe", "GET", f"{S}/app", kind="read"),
    Endpoint("update", "PATCH", f"{S}/app", {"env": {"A": "1"}}),
    Endpoint("deploy", "POST", f"{S}/app/deployments", {}, kind="deploy"),
    Endpoint(
        "deploy-image",
        "POST",
        f"{S}/app/deployments",
        {"image": f"{REGISTRY}/alice/app:2"},
        kind="deploy",
    ),
    Endpoint("rollback", "POST", f"{S}/app/rollback", {"revision": 1}),
    Endpoint("pause", "POST", f"{S}/app/pause"),
    Endpoint("resume", "POST", f"{S}/app/resume", paused=True),
    Endpoint("delete", "DELETE", f"{S}/app"),
    Endpoint("operations", "GET", f"{S}/app/operations", kind="read"),
    Endpoint("operation", "GET", "/api/v1/operations/{op}", kind="read"),
    Endpoint("revisions", "GET", f"{S}/app/revisions", kind="read"),
    Endpoint("events", "GET", f"{S}/app/events", kind="read"),
    Endpoint("logs", "GET", f"{S}/app/logs?source=all", kind="read"),
    Endpoint("follow-logs", "GET", f"{S}/app/logs?follow=true&timeout=0.2", kind="read"),
    Endpoint("metrics", "GET", f"{S}/app/metrics?window=5m", kind="read"),
]


def expected(caller: str, endpoint: Endpoint) -> tuple[int, str | None]:
    """(status, error code) a caller gets from an endpoint on alice's service `app`."""
    if caller == "anonymous":
        return 401, "UNAUTHENTICATED"
    if caller == "repo-token":
        return 403, "FORBIDDEN"  # a token for the registry has nothing on services
    if caller in OWNERS:
        return endpoint.ok, None
    if caller in ("app-token", "other-token"):
        if endpoint.kind in ("create", "change"):
            return 403, "FORBIDDEN"  # such a token reads and deploys, nothing else
        if endpoint.name == "list" or caller == "app-token":
            return endpoint.ok, None
    if endpoint.name == "list":
        return 200, None
    if caller == "bob" and endpoint.name in ("create", "deploy-image"):
        # bob may not pull alice/app: checked first, the same whether `app` exists or not.
        return 403, "IMAGE_FORBIDDEN"
    if endpoint.name == "operation":
        return 404, "OPERATION_NOT_FOUND"
    return 404, "SERVICE_NOT_FOUND"


def _without(text: str, names: tuple[str, ...]) -> str:
    for name in names:
        text = text.replace(name, "NAME")
    return text


def sees_app(caller: str) -> bool:
    return caller in (*OWNERS, "app-token")


def reset(world: RightsWorld, paused: bool) -> str:
    """alice's `app`, running (or paused), and no `made`; the id of its create operation."""
    for name in ("app", "made"):
        with contextlib.suppress(ServiceNotFound):
            world.settle(world.services.delete(name).id)
    service, op = world.services.create(
        SpecChange({"name": "app", "image": f"{REGISTRY}/alice/app:1"}), owner="alice"
    )
    assert service.owner == "alice"
    assert world.settle(op.id) == "SUCCEEDED"
    if paused:
        assert world.settle(world.services.pause("app").id) == "SUCCEEDED"
    return op.id


def stored(world: RightsWorld) -> tuple[int, int, bool]:
    """What a refused request must not change: app's operations and revisions, `made`."""
    made = any(s.name == "made" for s in world.services.list())
    return len(world.services.operations("app")), len(world.services.revisions("app")), made


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
@pytest.mark.parametrize("caller", CALLERS)
def test_rights_matrix(world: RightsWorld, caller: str, endpoint: Endpoint) -> None:
    created = reset(world, endpoint.paused)
    before = stored(world)
    path = endpoint.path.format(op=created)
    r = world.request(caller, endpoint.method, path, endpoint.body)
    status, code = expected(caller, endpoint)
    assert r.status_code == status, r.text
    if code is not None:
        assert r.json()["error"]["code"] == code, r.text
        assert stored(world) == before
        # Refused as if `app` did not exist: the same answer as for a name nobody has.
        missing = endpoint.path.replace("/app", "/nope").format(op="0" * 32)
        unknown = world.request(caller, endpoint.method, missing, endpoint.body)
        assert unknown.status_code == r.status_code
        names = (created, "0" * 32, "'app'", "'nope'")
        assert _without(r.text, names) == _without(unknown.text, names)
    if endpoint.name == "list" and status == 200:
        assert ("app" in [s["name"] for s in r.json()]) == sees_app(caller)
        assert all(s["owner"] == "alice" for s in r.json())
    if endpoint.name == "describe" and status == 200:
        assert r.json()["owner"] == "alice"


def test_a_user_creates_services_they_own_and_only_an_admin_for_others(
    world: RightsWorld,
) -> None:
    reset(world, paused=False)
    mine = {"name": "bobs", "image": f"{REGISTRY}/bob/app:1"}
    r = world.request("bob", "POST", S, mine)
    assert r.status_code == 202, r.text
    assert r.json()["service"]["owner"] == "bob"
    world.settle(r.json()["operation"]["id"])
    assert [s["name"] for s in world.request("bob", "GET", S).json()] == ["bobs"]
    assert {"app", "bobs"} <= {s["name"] for s in world.request("admin", "GET", S).json()}
    # Names are global (they are host names): a taken one says so, whoever has it.
    taken = world.request("bob", "POST", S, {**mine, "name": "app"})
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "SERVICE_EXISTS"

    team = {"name": "teams", "image": f"{REGISTRY}/team/app:1", "owner": "team"}
    refused = world.request("bob", "POST", S, team)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "FORBIDDEN"
    for_alice = world.request("bob", "POST", S, {**mine, "name": "x-bob", "owner": "alice"})
    assert for_alice.status_code == 403
    made = world.request("admin", "POST", S, team)
    assert made.status_code == 202, made.text
    assert made.json()["service"]["owner"] == "team"
    bad = world.request("admin", "POST", S, {**team, "name": "bad-owner", "owner": "Team X"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_SERVICE_SPEC"
    # A team's service is an admin's to operate (users own only their own namespace).
    assert world.request("bob", "GET", f"{S}/teams").status_code == 404
    assert world.request("admin", "GET", f"{S}/teams").json()["owner"] == "team"
    for name in ("bobs", "teams"):
        world.settle(world.services.delete(name).id)


@pytest.mark.parametrize(
    ("caller", "image", "status"),
    [
        ("alice", "alice/private:1", 202),
        ("bob", "alice/private:1", 403),  # another user's private image
        ("bob", "team/app:1", 403),  # a team's: admins only, until teams have members
        ("app-token", "alice/private:1", 202),  # alice's own, through her CI token
        ("admin", "bob/app:1", 202),
    ],
)
def test_a_service_runs_only_images_its_owner_may_pull(
    world: RightsWorld, caller: str, image: str, status: int
) -> None:
    reset(world, paused=False)
    if caller != "alice":
        world.services.create(
            SpecChange({"name": "made", "image": f"{REGISTRY}/{caller}x/app:1"}), owner="bob"
        )
    target = "app" if caller in ("alice", "app-token", "admin") else "made"
    changes = [("POST", f"{S}/{target}/deployments", {"image": f"{REGISTRY}/{image}"})]
    if caller != "app-token":  # it may deploy, not update
        changes.append(("PATCH", f"{S}/{target}", {"image": f"127.0.0.1:5000/{image}"}))
    for method, path, body in changes:
        before = len(world.services.operations(target))
        r = world.request(caller, method, path, body)
        assert r.status_code == status, r.text
        if status == 403:
            assert r.json()["error"]["code"] == "IMAGE_FORBIDDEN"
            assert "may not pull" in r.json()["error"]["message"]
            assert len(world.services.operations(target)) == before
        else:
            world.settle(r.json()["id"])


def test_a_public_image_may_be_run_by_anyone(world: RightsWorld) -> None:
    reset(world, paused=False)
    body = {"name": "made", "image": f"{REGISTRY}/alice/private:1"}
    assert world.request("bob", "POST", S, body).status_code == 403
    world.registry.create_repository("alice/private", public=True)
    try:
        r = world.request("bob", "POST", S, body)
        assert r.status_code == 202, r.text
        world.settle(r.json()["operation"]["id"])
    finally:
        world.registry.set_public("alice/private", False)


@pytest.mark.parametrize(
    ("image", "resolves_to", "status"),
    [
        ("127.0.0.1:22/x:1", None, 403),  # probing the host's ports through the engine
        ("localhost:6379/x:1", None, 403),
        ("app.localhost:80/x:1", None, 403),
        ("2130706433:22/x:1", None, 403),  # 127.0.0.1 as one number
        ("10.1.2.3:5000/x:1", None, 403),
        ("169.254.169.254/latest/x:1", None, 403),  # cloud metadata
        ("192.168.1.1:5000/x:1", None, 403),
        ("inside.example:5000/x:1", ("10.0.0.7",), 403),  # a name for a private address
        ("rebind.example/x:1", ("93.184.216.34", "127.0.0.1"), 403),
        ("gone.example/x:1", None, 403),  # does not resolve: cannot tell where it points
        ("busybox:1", None, 403),  # a short name: the engine may take any local image
        ("4f9c3a8a2b1d", None, 403),  # ... or an image id
        ("registry.example/team/app:1", ("93.184.216.34",), 202),
    ],
)
def test_foreign_images_must_not_point_inside(
    world: RightsWorld, image: str, resolves_to: tuple[str, ...] | None, status: int
) -> None:
    reset(world, paused=False)
    host = image.split("/", 1)[0].split(":", 1)[0]
    if resolves_to is not None:
        world.resolver.names[host] = resolves_to
    r = world.request("alice", "POST", f"{S}/app/deployments", {"image": image})
    assert r.status_code == status, r.text
    if status == 403:
        assert r.json()["error"]["code"] == "IMAGE_FORBIDDEN"
    else:
        world.settle(r.json()["id"])  # fails to pull: the fake engine does not have it
    # An admin may run anything, a local image or a registry on the host included.
    r = world.request("admin", "POST", f"{S}/app/deployments", {"image": image})
    assert r.status_code == 202, r.text
    world.settle(r.json()["id"])


def test_a_token_limited_to_a_service_deploys_it_and_reads_nothing_else(
    world: RightsWorld,
) -> None:
    reset(world, paused=False)
    for method, path, body in [
        ("GET", "/api/v1/tokens", None),
        ("POST", "/api/v1/tokens", {"name": "wider"}),
        ("GET", "/api/v1/users", None),
        ("POST", "/api/v1/registry/gc", {"dry_run": True}),
        ("PUT", "/api/v1/registry/repositories/alice/app/public", {"public": True}),
    ]:
        r = world.request("app-token", method, path, body)
        assert r.status_code == 403, (path, r.text)
    # Nothing in the registry either, unless the token is limited to repositories too.
    tags = world.request("app-token", "GET", "/api/v1/registry/repositories/alice/app/tags")
    assert tags.status_code == 404
    assert world.request("app-token", "GET", "/api/v1/whoami").json()["name"] == "alice"


def test_tokens_list_their_limits(world: RightsWorld) -> None:
    r = world.request(
        "alice", "POST", "/api/v1/tokens", {"name": "ci", "services": ["app"], "repositories": []}
    )
    assert r.status_code == 201, r.text
    assert r.json()["services"] == ["app"] and r.json()["token"]
    listed = {t["name"]: t for t in world.request("alice", "GET", "/api/v1/tokens").json()}
    assert listed["ci"]["services"] == ["app"]
    assert listed["repo-token"]["repositories"] == ["alice/app"]
    assert world.request("alice", "DELETE", "/api/v1/tokens/ci").status_code == 204


def test_a_token_named_with_a_slash_is_revoked_by_its_name(world: RightsWorld) -> None:
    made = world.request("alice", "POST", "/api/v1/tokens", {"name": "ci/deploy"})
    assert made.status_code == 201, made.text
    assert world.request("alice", "DELETE", "/api/v1/tokens/ci%2Fdeploy").status_code == 204
    assert "ci/deploy" not in [t.name for t in world.auth.tokens("alice")]


def test_a_token_limited_to_a_repository_may_not_publish_it_nor_list_tokens(
    world: RightsWorld,
) -> None:
    """Issue 6: commit abb2069 left both open (a push right made the repository public)."""
    world.registry.create_repository("alice/app")
    r = world.request(
        "repo-token", "PUT", "/api/v1/registry/repositories/alice/app/public", {"public": True}
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN"
    assert not world.registry.is_public("alice/app")
    assert world.request("repo-token", "GET", "/api/v1/tokens").status_code == 403
    # It still reads its repository, and alice herself may publish it.
    assert (
        world.request(
            "repo-token", "GET", "/api/v1/registry/repositories/alice/app/tags"
        ).status_code
        == 200
    )
    r = world.request(
        "alice", "PUT", "/api/v1/registry/repositories/alice/app/public", {"public": True}
    )
    assert r.status_code == 204 and world.registry.is_public("alice/app")
    world.registry.set_public("alice/app", False)


def test_a_taken_custom_domain_names_its_service_only_to_those_who_see_it(
    world: RightsWorld,
) -> None:
    reset(world, paused=False)
    world.settle(
        world.services.update("app", SpecChange({"custom_domains": ["shop.example.com"]})).id
    )
    body = {
        "name": "shop",
        "image": f"{REGISTRY}/bob/app:1",
        "custom_domains": ["shop.example.com"],
    }
    r = world.request("bob", "POST", S, body)
    assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_SERVICE_SPEC"
    assert "already used by another service" in r.json()["error"]["message"]
    r = world.request("admin", "POST", S, body)
    assert r.status_code == 400 and "already used by app" in r.json()["error"]["message"]
