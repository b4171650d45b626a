"""The facade: what the API and CLI get back, and what they are refused."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from baepo.control import (
    MASK,
    Caller,
    InvalidServiceSpec,
    InvalidServiceState,
    OperationInProgress,
    OperationNotFound,
    Quota,
    QuotaExceeded,
    RevisionNotFound,
    SecretBox,
    SecretsUnreadable,
    ServiceExists,
    ServiceNotFound,
    Services,
    SpecChange,
    load_or_create_secret_key,
    records,
)
from baepo.control.tables import RevisionRow, ServiceRow
from baepo.control.views import OperationView
from tests.control.conftest import CREDENTIALS, World
from tests.fakes.engine import FakeImage

pytestmark = pytest.mark.anyio

APP_1 = "localhost:5000/team/app:1"
TAG_RULE = "up to 128 ASCII letters, digits, '_', '.' or '-', not starting with '.' or '-'"


async def test_create_answers_at_once_with_a_pending_operation(world: World) -> None:
    service, op = world.services.create(SpecChange({"name": "app", "image": APP_1}))
    assert service.status == "OPERATION_IN_PROGRESS"
    assert service.revision is None and service.instances == ()
    assert (op.kind, op.status) == ("CREATE_SERVICE", "PENDING")
    assert service.operation == op.id
    assert [s.name for s in world.services.list()] == ["app"]


async def test_a_bad_spec_is_refused_and_nothing_is_stored(world: World) -> None:
    with pytest.raises(InvalidServiceSpec) as caught:
        world.services.create(SpecChange({"name": "app", "image": APP_1, "cpu": 3}))
    assert caught.value.field == "cpu"
    assert world.services.list() == []


async def test_a_name_is_taken_once(world: World) -> None:
    world.services.create(SpecChange({"name": "app", "image": APP_1}))
    with pytest.raises(ServiceExists):
        world.services.create(SpecChange({"name": "app", "image": APP_1}))


async def test_custom_domains_are_checked_against_the_domain_and_other_services(
    world: World,
) -> None:
    with pytest.raises(InvalidServiceSpec, match="under localhost"):
        world.services.create(
            SpecChange({"name": "app", "image": APP_1, "custom_domains": ["other.localhost"]})
        )
    world.services.create(
        SpecChange({"name": "one", "image": APP_1, "custom_domains": ["www.example.com"]})
    )
    with pytest.raises(InvalidServiceSpec, match="already used by one"):
        world.services.create(
            SpecChange({"name": "two", "image": APP_1, "custom_domains": ["www.example.com"]})
        )


async def test_one_operation_at_a_time(world: World) -> None:
    _, op = world.services.create(SpecChange({"name": "app", "image": APP_1}))
    with pytest.raises(OperationInProgress, match=op.id) as refused:
        world.services.update("app", SpecChange({"port": 9000}))
    assert refused.value.operation_id == op.id
    await world.settle(world.done(op.id))
    world.services.update("app", SpecChange({"port": 9000}))


async def test_a_deploy_waits_its_turn_behind_the_operation_in_flight(world: World) -> None:
    _, created = world.services.create(SpecChange({"name": "app", "image": APP_1}))
    first = world.services.deploy("app", APP_1.replace(":1", ":2"))
    second = world.services.deploy("app")  # queued behind both

    assert (first.status, second.status) == ("PENDING", "PENDING")
    log = [line.line for line in world.services.operation(second.id).log]
    assert log == [f"START_DEPLOYMENT requested; waiting for operation {first.id} "
                   "(START_DEPLOYMENT) to end"]  # fmt: skip
    await world.settle(world.done(second.id))
    assert [world.status(o) for o in (created.id, first.id, second.id)] == ["SUCCEEDED"] * 3
    assert world.services.describe("app").active_revision == 3


async def test_two_changes_made_at_once_are_decided_one_after_the_other(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, op = world.services.create(SpecChange({"name": "app", "image": APP_1}))
    await world.settle(world.done(op.id))
    second: list[OperationView | Exception] = []

    def other_request() -> None:
        try:
            second.append(world.services.update("app", SpecChange({"env": {"B": "2"}})))
        except Exception as exc:
            second.append(exc)

    other = threading.Thread(target=other_request)
    real = records.operations_in_flight

    def check_then_let_the_other_in(s: object, service_id: str) -> object:
        found = real(s, service_id)  # type: ignore[arg-type]
        if not other.ident:  # the first request has checked: nothing is in flight
            other.start()
            # Before the fix the other request checked and committed here, well within this;
            # now it must wait for the first one to commit.
            other.join(timeout=0.5)
        return found

    monkeypatch.setattr(records, "operations_in_flight", check_then_let_the_other_in)
    first = world.services.update("app", SpecChange({"env": {"A": "1"}}))
    other.join()
    monkeypatch.undo()
    (refused,) = second
    assert isinstance(refused, OperationInProgress) and first.id in str(refused)
    kinds = [o.kind for o in world.services.operations("app")]
    assert kinds == ["UPDATE_SERVICE", "CREATE_SERVICE"]
    await world.settle(world.done(first.id))
    assert world.services.describe("app").config["env"] == {"A": "1"}


async def test_a_domain_asked_for_by_a_change_still_in_flight_is_taken(world: World) -> None:
    for name in ("one", "two"):
        _, op = world.services.create(SpecChange({"name": name, "image": APP_1}))
        await world.settle(world.done(op.id))
    world.services.update(
        "one", SpecChange({"custom_domains": ["shop.example.com"]})
    )  # not begun yet
    with pytest.raises(InvalidServiceSpec, match=r"shop\.example\.com is already used by one"):
        world.services.update("two", SpecChange({"custom_domains": ["shop.example.com"]}))
    with pytest.raises(InvalidServiceSpec, match=r"shop\.example\.com is already used by one"):
        world.services.create(
            SpecChange({"name": "three", "image": APP_1, "custom_domains": ["shop.example.com"]})
        )


async def test_state_rules(world: World) -> None:
    _, op = world.services.create(SpecChange({"name": "app", "image": APP_1}))
    await world.settle(world.done(op.id))
    with pytest.raises(InvalidServiceState, match="not paused"):
        world.services.resume("app")
    with pytest.raises(RevisionNotFound):
        world.services.rollback("app", 7)
    with pytest.raises(InvalidServiceSpec):
        world.services.deploy("app", image="Not An Image")
    pause = world.services.pause("app")
    await world.settle(world.done(pause.id))
    with pytest.raises(InvalidServiceState, match="paused"):
        world.services.deploy("app")
    with pytest.raises(ServiceNotFound):
        world.services.describe("nope")
    with pytest.raises(OperationNotFound):
        world.services.operation("0" * 32)


@pytest.mark.parametrize(
    "how",
    [
        "create",
        "update",
        "deploy",
    ],
)
async def test_create_update_and_deploy_refuse_an_image_with_the_same_words(
    world: World, how: str
) -> None:
    """One grammar (baepo.references): `vé1` is no tag for the registry, the engine, or here
    (Python's Unicode `\\w` once let it through)."""
    bad = "localhost:5000/team/app:vé1"
    _, op = world.services.create(SpecChange({"name": "app", "image": APP_1}))
    await world.settle(world.done(op.id))
    with pytest.raises(InvalidServiceSpec) as caught:
        if how == "create":
            world.services.create(SpecChange({"name": "other", "image": bad}))
        elif how == "update":
            world.services.update("app", SpecChange({"image": bad}))
        else:
            world.services.deploy("app", image=bad)
    assert caught.value.problems == (
        ("image", f"{bad!r} is not an image reference: 'vé1' is not a valid tag: {TAG_RULE}"),
    )
    assert [s.name for s in world.services.list()] == ["app"]
    assert world.services.describe("app").config["image"] == APP_1


async def test_secrets_are_sealed_at_rest_masked_when_read_and_given_to_the_instance(
    world: World,
) -> None:
    def respond(path: str, env: object) -> tuple[int, str]:
        assert isinstance(env, dict)
        return 200, f"{env.get('DB_PASSWORD')} {env.get('MODE')} {env.get('PORT')}"

    world.engine.publish(
        FakeImage(ref="localhost:5000/team/env:1", respond=respond, credentials=CREDENTIALS)
    )
    _, op = world.services.create(
        SpecChange(
            {
                "name": "env",
                "image": "localhost:5000/team/env:1",
                "env": {"MODE": "prod"},
                "secrets": {"DB_PASSWORD": "hunter2"},
            }
        )
    )
    await world.settle(world.done(op.id))
    view = world.services.describe("env")
    assert view.config["secrets"] == {"DB_PASSWORD": MASK}
    assert view.config["env"] == {"MODE": "prod"}
    assert world.services.revisions("env")[0].config["secrets"] == {"DB_PASSWORD": MASK}
    with world.db.session() as s:
        stored = str(s.scalars(sa.select(ServiceRow.spec)).all())
        stored += str(s.scalars(sa.select(RevisionRow.spec)).all())
    assert "hunter2" not in stored and "DB_PASSWORD" in stored
    (instance,) = view.instances
    assert instance.address is not None
    body = httpx.get(f"http://{instance.address}/", timeout=5).text
    assert body == "hunter2 prod 8080"
    # In the clear for what Baepo runs on the service's behalf (a pipeline's steps) only,
    # and only to a caller who reaches the service.
    assert world.services.secrets("env") == {"DB_PASSWORD": "hunter2"}
    with pytest.raises(ServiceNotFound):
        world.services.secrets("env", caller=Caller("bob", frozenset({"bob"})))


async def test_a_secret_sent_back_masked_keeps_its_value(world: World) -> None:
    _, op = world.services.create(
        SpecChange({"name": "app", "image": APP_1, "secrets": {"TOKEN": "t0ken"}})
    )
    await world.settle(world.done(op.id))
    config = world.services.describe("app").config
    update = world.services.update("app", SpecChange({"secrets": config["secrets"], "port": 9090}))
    await world.settle(world.done(update.id))
    with world.db.session() as s:
        row = s.scalar(sa.select(ServiceRow))
        assert row is not None
        assert world.box.open(row.spec["secrets"]["TOKEN"]) == "t0ken"


async def test_operations_are_listed_newest_first_each_with_a_timestamped_log(
    world: World,
) -> None:
    _, create = world.services.create(SpecChange({"name": "app", "image": APP_1}))
    await world.settle(world.done(create.id))
    pause = world.services.pause("app")
    await world.settle(world.done(pause.id))
    listed = world.services.operations("app")
    assert [o.kind for o in listed] == ["PAUSE_SERVICE", "CREATE_SERVICE"]
    assert all(o.status == "SUCCEEDED" for o in listed)
    detail = world.services.operation(create.id)
    assert detail.log[0].line == "CREATE_SERVICE requested"
    assert detail.log[-1].line == "SUCCEEDED: revision 1 serves"
    times = [line.at for line in detail.log]
    assert times == sorted(times) and times[0].tzinfo is not None
    assert detail.started_at is not None and detail.ended_at is not None


async def test_delete_cancels_what_waits_or_runs(world: World) -> None:
    _, create = world.services.create(SpecChange({"name": "app", "image": APP_1}))
    delete = world.services.delete("app")
    cancelled = world.services.operation(create.id)
    assert cancelled.status == "FAILED"
    assert "cancelled" in cancelled.message
    await world.settle(world.done(delete.id))
    assert world.status(delete.id) == "SUCCEEDED"
    assert world.containers() == []


def test_the_secrets_key_is_created_once_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "control.key"
    key = load_or_create_secret_key(path)
    assert load_or_create_secret_key(path) == key
    assert path.stat().st_mode & 0o777 == 0o600
    sealed = SecretBox(key).seal("s3cret")
    assert "s3cret" not in sealed
    assert SecretBox(key).open(sealed) == "s3cret"
    with pytest.raises(SecretsUnreadable):
        SecretBox(SecretBox.generate_key()).open(sealed)
    with pytest.raises(SecretsUnreadable):
        SecretBox(b"not a key")


def test_urls_name_the_routers_port_unless_it_is_443(world: World) -> None:
    world.services.create(SpecChange({"name": "app", "image": APP_1}))
    assert world.services.describe("app").url == "https://app.localhost"
    on_8443 = Services(
        db=world.db, engine=world.engine, secrets=world.box, clock=world.clock,
        domain="localhost", registry=world.registry, https_port=8443,
    )  # fmt: skip
    assert on_8443.describe("app").url == "https://app.localhost:8443"


def test_the_registrys_host_name_is_no_service_name(world: World) -> None:
    services = Services(
        db=world.db, engine=world.engine, secrets=world.box, clock=world.clock,
        domain="localhost", registry=world.registry, reserved_names=("registry",),
    )  # fmt: skip
    with pytest.raises(InvalidServiceSpec, match=r"registry\.localhost is where Baepo's registry"):
        services.create(SpecChange({"name": "registry", "image": APP_1}))
    with pytest.raises(InvalidServiceSpec, match="is under localhost"):
        services.create(
            SpecChange({"name": "app", "image": APP_1, "custom_domains": ["registry.localhost"]})
        )


async def test_a_deploy_queued_behind_a_pause_fails_instead_of_serving_nothing(
    world: World,
) -> None:
    _, created = world.services.create(SpecChange({"name": "app", "image": APP_1}))
    await world.settle(world.done(created.id))
    pause = world.services.pause("app")
    deploy = world.services.deploy("app", APP_1.replace(":1", ":2"))  # queued behind it
    await world.settle(world.done(deploy.id))
    assert world.status(pause.id) == "SUCCEEDED"
    assert world.status(deploy.id) == "FAILED"
    assert "paused meanwhile" in world.services.operation(deploy.id).message
    assert world.services.describe("app").active_revision == 1


def test_a_services_identity_is_read_without_the_engine(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = Caller("alice", owners=frozenset({"alice"}))
    world.services.create(SpecChange({"name": "app", "image": APP_1}), caller=alice)
    described = world.services.describe("app", caller=alice)

    def asked(labels: object) -> list[object]:
        raise AssertionError("the engine was asked")

    monkeypatch.setattr(world.engine, "list", asked)
    found = world.services.identity("app", caller=alice)

    assert (found.name, found.owner, found.created_at) == ("app", "alice", described.created_at)
    with pytest.raises(ServiceNotFound):  # another's service is none, as for `describe`
        world.services.identity("app", caller=Caller("bob", frozenset({"bob"})))
    with pytest.raises(ServiceNotFound):
        world.services.identity("absent", caller=alice)


async def test_a_user_is_bound_by_the_quota_and_an_admin_is_not(world: World) -> None:
    services = Services(
        db=world.db, engine=world.engine, secrets=world.box, clock=world.clock,
        domain="localhost", registry=world.registry, quota=Quota(services=2, instances=3),
    )  # fmt: skip
    alice = Caller("alice", owners=frozenset({"alice"}))
    services.create(SpecChange({"name": "one", "image": APP_1}), caller=alice)
    _, created = services.create(SpecChange({"name": "two", "image": APP_1}), caller=alice)
    await world.settle(world.done(created.id))
    with pytest.raises(QuotaExceeded, match="alice may have at most 2 services"):
        services.create(SpecChange({"name": "three", "image": APP_1}), caller=alice)
    assert [s.name for s in services.list(caller=alice)] == ["one", "two"]
    with pytest.raises(QuotaExceeded, match="at most 3 instances running, not 4"):
        services.update("two", SpecChange({"min_instances": 3}), caller=alice)
    services.update("two", SpecChange({"min_instances": 2}), caller=alice)
    # Another user has a quota of their own; an admin (or the system) has none.
    bob = Caller("bob", owners=frozenset({"bob"}))
    services.create(SpecChange({"name": "bobs", "image": APP_1}), caller=bob)
    services.create(SpecChange({"name": "three", "image": APP_1}), owner="alice")
