"""Shared autoscaling configurations: revisions, owners, the built-in default, and services
that use one (pinned, copied, never changed underfoot, never deleted from under them)."""

from __future__ import annotations

import threading

import pytest

from baepo.control import (
    ConfigurationInUse,
    ConfigurationNotFound,
    Conflict,
    InvalidAutoScalingConfiguration,
    InvalidServiceSpec,
    QuotaExceeded,
    SpecChange,
)
from baepo.control.autoscaling_configurations import MAX_REVISIONS_PER_NAME
from baepo.control.callers import Caller
from tests.control.conftest import World, app_image

pytestmark = pytest.mark.anyio

APP = app_image("1").ref
ALICE = Caller("alice", owners=frozenset({"alice"}))
BOB = Caller("bob", owners=frozenset({"bob"}))


def test_creating_a_name_again_adds_a_revision_and_the_newest_is_latest(world: World) -> None:
    configs = world.services.configurations
    first = configs.create("fast", 2, 10, 50, caller=ALICE)
    second = configs.create("fast", 0, 5, 20, caller=ALICE)
    assert (first.revision, first.latest, first.owner) == (1, True, "alice")
    assert (second.revision, second.min_size, second.max_size) == (2, 0, 5)
    listed = [(v.name, v.revision, v.latest) for v in configs.list(caller=ALICE)]
    assert listed == [("DefaultConfiguration", 1, True), ("fast", 2, True), ("fast", 1, False)]
    assert configs.describe("fast", caller=ALICE).revision == 2
    assert configs.describe("fast", 1, caller=ALICE).max_concurrency == 50
    latest = configs.list(caller=ALICE, latest_only=True)
    assert [(v.name, v.revision) for v in latest] == [("DefaultConfiguration", 1), ("fast", 2)]


def test_the_default_is_built_in_and_cannot_be_changed_or_deleted(world: World) -> None:
    configs = world.services.configurations
    default = configs.describe("DefaultConfiguration", caller=ALICE)
    assert (default.min_size, default.max_size, default.max_concurrency) == (1, 25, 100)
    with pytest.raises(InvalidAutoScalingConfiguration, match="built in"):
        configs.create("DefaultConfiguration", 2, 3, 4)
    with pytest.raises(Conflict, match="built in and cannot be deleted"):
        configs.delete("DefaultConfiguration")


@pytest.mark.parametrize(
    ("name", "sizes", "field"),
    [
        ("abc", (1, 25, 100), "name"),  # App Runner: 4 to 32 characters
        ("-fast", (1, 25, 100), "name"),
        ("fast", (26, 25, 100), "min_size"),
        ("fast", (3, 2, 100), "min_size"),
        ("fast", (1, 26, 100), "max_size"),
        ("fast", (1, 0, 100), "max_size"),
        ("fast", (1, 25, 201), "max_concurrency"),
        ("fast", (1, 25, 0), "max_concurrency"),
    ],
)
def test_bad_values_are_refused_naming_the_field(
    world: World, name: str, sizes: tuple[int, int, int], field: str
) -> None:
    with pytest.raises(InvalidAutoScalingConfiguration) as raised:
        world.services.configurations.create(name, *sizes)
    assert raised.value.field == field
    assert [v.name for v in world.services.configurations.list()] == ["DefaultConfiguration"]


def test_a_name_belongs_to_its_owner_and_others_do_not_see_it(world: World) -> None:
    configs = world.services.configurations
    configs.create("fast", 2, 10, 50, caller=ALICE)
    with pytest.raises(Conflict, match="belongs to another owner"):
        configs.create("fast", 1, 2, 3, caller=BOB)
    with pytest.raises(ConfigurationNotFound):
        configs.describe("fast", caller=BOB)
    with pytest.raises(ConfigurationNotFound):
        configs.delete("fast", caller=BOB)
    assert [v.name for v in configs.list(caller=BOB)] == ["DefaultConfiguration"]
    assert [v.owner for v in configs.list() if v.name == "fast"] == ["alice"]  # an admin: all
    with pytest.raises(InvalidServiceSpec) as raised:
        world.services.create(
            SpecChange({"name": "app", "image": APP, "autoscaling_configuration": "fast"}),
            caller=BOB,
        )
    assert raised.value.field == "autoscaling_configuration"


def test_revisions_per_name_are_bounded_for_users(world: World) -> None:
    configs = world.services.configurations
    for _ in range(MAX_REVISIONS_PER_NAME):
        configs.create("fast", caller=ALICE)
    with pytest.raises(QuotaExceeded, match="delete an unused one"):
        configs.create("fast", caller=ALICE)
    configs.delete("fast", 1, caller=ALICE)
    assert configs.create("fast", caller=ALICE).revision == MAX_REVISIONS_PER_NAME + 1


async def test_a_service_gets_the_configuration_pinned_and_its_values(world: World) -> None:
    configs = world.services.configurations
    configs.create("fast", 2, 6, 30, caller=ALICE)
    fields = {"name": "app", "image": APP, "autoscaling_configuration": "fast"}
    service, op = world.services.create(SpecChange(fields), caller=ALICE)
    assert service.config["autoscaling_configuration"] == "fast:1"
    bounds = [service.config[k] for k in ("min_instances", "max_instances", "max_concurrency")]
    assert bounds == [2, 6, 30]
    await world.settle(world.done(op.id))
    assert world.status(op.id) == "SUCCEEDED"
    assert len(world.containers(running=True)) == 2
    assert world.router.routes["app"].max_concurrency == 30  # each server's maxconn
    # A new revision of the name changes nothing for the service: it uses fast:1.
    configs.create("fast", 3, 6, 10, caller=ALICE)
    assert world.services.describe("app").config["max_concurrency"] == 30
    assert configs.describe("fast", 1, caller=ALICE).services == ("app",)
    assert configs.describe("fast", 2, caller=ALICE).services == ()


async def test_a_configuration_in_use_cannot_be_deleted(world: World) -> None:
    configs = world.services.configurations
    configs.create("fast", 1, 4, 30, caller=ALICE)
    configs.create("slow", 1, 2, 5, caller=ALICE)
    fields = {"name": "app", "image": APP, "autoscaling_configuration": "fast:1"}
    _, op = world.services.create(SpecChange(fields), caller=ALICE)
    with pytest.raises(ConfigurationInUse, match=r"fast:1 is used by app"):
        configs.delete("fast", caller=ALICE)
    await world.settle(world.done(op.id))
    # Changing the configuration is an update like any other; while it is in flight, both
    # the configuration it leaves and the one it asks for are in use.
    update = world.services.update(
        "app", SpecChange({"autoscaling_configuration": "slow"}), caller=ALICE
    )
    assert update.kind == "UPDATE_SERVICE"
    with pytest.raises(ConfigurationInUse, match="slow:1 is used by app"):
        configs.delete("slow", 1, caller=ALICE)
    await world.settle(world.done(update.id))
    assert world.router.routes["app"].max_concurrency == 5
    deleted = configs.delete("fast", caller=ALICE)
    assert [(v.name, v.revision) for v in deleted] == [("fast", 1)]
    # A revision number is never used twice: fast:1 meant other values.
    assert configs.create("fast", 1, 2, 3, caller=ALICE).revision == 2


async def test_the_configuration_is_the_source_of_the_bounds(world: World) -> None:
    world.services.configurations.create("fast", 1, 4, 30)
    both = {"name": "app", "image": APP, "autoscaling_configuration": "fast", "max_instances": 3}
    with pytest.raises(InvalidServiceSpec, match="max_instances: comes from the autoscaling"):
        world.services.create(SpecChange(both))
    _, op = world.services.create(SpecChange({k: v for k, v in both.items() if k[0] != "m"}))
    await world.settle(world.done(op.id))
    with pytest.raises(InvalidServiceSpec, match="min_instances: comes from"):
        world.services.update("app", SpecChange({"min_instances": 2}))
    # '' lets the service set its own bounds again, starting from the configuration's.
    detach = world.services.update(
        "app", SpecChange({"autoscaling_configuration": "", "max_concurrency": 7})
    )
    await world.settle(world.done(detach.id))
    config = world.services.describe("app").config
    assert config["autoscaling_configuration"] is None
    assert (config["max_instances"], config["max_concurrency"]) == (4, 7)
    assert world.router.routes["app"].max_concurrency == 7


@pytest.mark.parametrize("reference", ["fast:x", "fast:0", "a b", "fast:1:2", 3])
def test_a_malformed_reference_is_refused_before_anything_is_read(
    world: World, reference: object
) -> None:
    fields = {"name": "app", "image": APP, "autoscaling_configuration": reference}
    with pytest.raises(InvalidServiceSpec) as raised:
        world.services.create(SpecChange(fields))
    assert raised.value.field == "autoscaling_configuration"


def test_a_delete_and_a_service_that_names_the_revision_are_decided_in_turn(
    world: World,
) -> None:
    """Started together in either order, whichever commits first, the other sees it: never
    a service left naming a deleted revision, never a refusal for a revision deleted anyway."""
    configs = world.services.configurations
    for round_ in range(12):
        name = f"race{round_:02d}"
        configs.create(name, 1, 2, 3)
        fields = {"name": f"app-{round_}", "image": APP, "autoscaling_configuration": name}
        results: dict[str, str] = {}

        def create(fields: dict[str, str] = fields, results: dict[str, str] = results) -> None:
            try:
                world.services.create(SpecChange(fields))
                results["create"] = "ok"
            except InvalidServiceSpec:
                results["create"] = "refused"

        def delete(name: str = name, results: dict[str, str] = results) -> None:
            try:
                configs.delete(name)
                results["delete"] = "ok"
            except ConfigurationInUse:
                results["delete"] = "refused"

        threads = [threading.Thread(target=create), threading.Thread(target=delete)]
        for thread in threads if round_ % 2 else reversed(threads):
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(results.values()) == ["ok", "refused"], results
        if results["create"] == "ok":
            assert configs.describe(name).services == (f"app-{round_}",)
        else:
            assert configs.list(name=name) == []
