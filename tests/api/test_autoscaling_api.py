"""`/api/v1/autoscaling-configurations` in process (the real API app over memory fakes): the
calls, their errors, who may do what, and services that name a configuration."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api.rights_world import REGISTRY, RightsWorld, basic, bearer, build

PATH = "/api/v1/autoscaling-configurations"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RightsWorld]:
    for world in build(tmp_path_factory.mktemp("autoscaling")):
        for user in ("admin", "alice", "bob"):
            world.headers[user] = basic(user)
        world.headers["repo-token"] = bearer(
            world.token("alice", "repo", repositories=("alice/app",))
        )
        world.headers["app-token"] = bearer(world.token("alice", "app", services=("app",)))
        yield world


def test_revisions_latest_and_reads(world: RightsWorld) -> None:
    first = world.request("alice", "POST", PATH, {"name": "alice-fast", "max_concurrency": 50})
    assert first.status_code == 201, first.text
    assert first.json()["revision"] == 1 and first.json()["owner"] == "alice"
    second = world.request("alice", "POST", PATH, {"name": "alice-fast", "min_size": 0})
    assert (second.json()["revision"], second.json()["max_concurrency"]) == (2, 100)
    latest = world.request("alice", "GET", f"{PATH}/alice-fast").json()
    assert (latest["revision"], latest["latest"]) == (2, True)
    one = world.request("alice", "GET", f"{PATH}/alice-fast/1").json()
    assert (one["max_concurrency"], one["latest"]) == (50, False)
    listed = world.request("alice", "GET", f"{PATH}?name=alice-fast").json()
    assert [(c["name"], c["revision"]) for c in listed] == [("alice-fast", 2), ("alice-fast", 1)]
    names = [c["name"] for c in world.request("alice", "GET", f"{PATH}?latest_only=true").json()]
    assert names.count("alice-fast") == 1 and "DefaultConfiguration" in names


@pytest.mark.parametrize(
    ("body", "status", "code", "words"),
    [
        ({"name": "abc"}, 400, "INVALID_AUTOSCALING_CONFIGURATION", "name"),
        ({"name": "good-name", "min_size": 26}, 400, "INVALID_AUTOSCALING_CONFIGURATION", "min"),
        ({"name": "good-name", "max_size": 0}, 400, "INVALID_AUTOSCALING_CONFIGURATION", "max"),
        (
            {"name": "good-name", "max_concurrency": 10**30},
            400,
            "INVALID_AUTOSCALING_CONFIGURATION",
            "max_concurrency",
        ),
        ({"name": "DefaultConfiguration"}, 400, "INVALID_AUTOSCALING_CONFIGURATION", "built in"),
        ({"name": "good-name", "min_size": True}, 422, "INVALID_REQUEST", "min_size"),
        ({"name": "good-name", "colour": "red"}, 422, "INVALID_REQUEST", "colour"),
    ],
)
def test_bad_configurations(
    world: RightsWorld, body: dict[str, object], status: int, code: str, words: str
) -> None:
    r = world.request("alice", "POST", PATH, body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert words in r.json()["error"]["message"]
    assert world.request("alice", "GET", f"{PATH}/good-name").status_code == 404


def test_rights(world: RightsWorld) -> None:
    assert world.request("bob", "POST", PATH, {"name": "bob-conf"}).status_code == 201
    hidden = world.request("alice", "GET", f"{PATH}/bob-conf")
    assert hidden.status_code == 404
    assert hidden.json()["error"]["code"] == "AUTOSCALING_CONFIGURATION_NOT_FOUND"
    assert world.request("alice", "DELETE", f"{PATH}/bob-conf").status_code == 404
    taken = world.request("alice", "POST", PATH, {"name": "bob-conf"})
    assert taken.status_code == 409 and "another owner" in taken.text
    assert "bob-conf" in [c["name"] for c in world.request("admin", "GET", PATH).json()]
    for_bob = world.request("alice", "POST", PATH, {"name": "for-bob", "owner": "bob"})
    assert for_bob.status_code == 403
    assert (
        world.request("admin", "POST", PATH, {"name": "for-bob", "owner": "bob"}).json()["owner"]
        == "bob"
    )
    assert world.request("anonymous", "GET", PATH).status_code == 401
    assert world.request("repo-token", "GET", PATH).status_code == 403
    assert world.request("app-token", "GET", PATH).status_code == 200
    assert world.request("app-token", "POST", PATH, {"name": "by-token"}).status_code == 403


def test_a_service_uses_one_and_it_cannot_be_deleted_meanwhile(world: RightsWorld) -> None:
    assert world.request("alice", "POST", PATH, {"name": "shared", "max_concurrency": 7}).is_success
    service = {"name": "app", "image": f"{REGISTRY}/alice/app:1"}
    both = {**service, "autoscaling_configuration": "shared", "max_concurrency": 3}
    refused = world.request("alice", "POST", "/api/v1/services", both)
    assert refused.status_code == 400 and "comes from the autoscaling configuration" in refused.text
    created = world.request(
        "alice", "POST", "/api/v1/services", {**service, "autoscaling_configuration": "shared"}
    )
    assert created.status_code == 202, created.text
    config = created.json()["service"]["config"]
    assert (config["autoscaling_configuration"], config["max_concurrency"]) == ("shared:1", 7)
    assert world.settle(created.json()["operation"]["id"]) == "SUCCEEDED"
    used = world.request("alice", "GET", f"{PATH}/shared").json()
    assert (used["services"], used["in_use"]) == (["app"], 1)
    for path in (f"{PATH}/shared", f"{PATH}/shared/1"):
        busy = world.request("alice", "DELETE", path)
        assert busy.status_code == 409, busy.text
        assert busy.json()["error"]["code"] == "AUTOSCALING_CONFIGURATION_IN_USE"
        assert "shared:1 is used by app" in busy.json()["error"]["message"]
    default = world.request("admin", "DELETE", f"{PATH}/DefaultConfiguration")
    assert default.status_code == 409 and "built in" in default.text
    change = {"autoscaling_configuration": "DefaultConfiguration"}
    update = world.request("alice", "PATCH", "/api/v1/services/app", change)
    assert update.status_code == 202 and update.json()["kind"] == "UPDATE_SERVICE"
    assert world.settle(update.json()["id"]) == "SUCCEEDED"
    described = world.request("alice", "GET", "/api/v1/services/app").json()["config"]
    assert described["autoscaling_configuration"] == "DefaultConfiguration:1"
    assert described["max_concurrency"] == 100
    deleted = world.request("alice", "DELETE", f"{PATH}/shared/1")
    assert deleted.status_code == 200 and deleted.json()["revision"] == 1
    assert world.request("alice", "GET", f"{PATH}/shared").status_code == 404
