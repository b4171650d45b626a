"""Auto-deploy: a push of the tracked tag to Baepo's registry deploys it; the same digest does not.

Also the loop itself (`Reconciler.run`): it sleeps on the clock and is woken early by a
push and by an engine event, so a crash is seen without waiting for the idle interval.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from baepo.clock import SystemClock
from baepo.control import Reconciler, RegistryLink, SecretBox, Services, SpecChange, Timing
from baepo.events import EventBus, ImagePushed
from tests.control.conftest import CREDENTIALS, REGISTRY, World, app_image, hello, make_database
from tests.control.fakes import FakeProber, MemoryPushLog
from tests.fakes.engine import FakeImage, MemoryEngine
from tests.fakes.router import MemoryRouter

pytestmark = pytest.mark.anyio

APP_1 = "localhost:5000/team/app:1"


def pushed(repository: str, tag: str | None, digest: str) -> ImagePushed:
    return ImagePushed(
        repository=repository,
        tag=tag,
        digest=digest,
        media_type="application/vnd.oci.image.manifest.v1+json",
        actor="alice",
        at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def rebuilt(tag: str, build: str) -> FakeImage:
    """A new build pushed under an existing tag: same ref, new digest."""
    return app_image(
        tag, digest="sha256:" + build * 64, id="sha256:" + build * 64, respond=hello(build)
    )


async def running_app(world: World, image: str = APP_1, **fields: object) -> None:
    spec: dict[str, object] = {"name": "app", "image": image, **fields}
    _, op = world.services.create(SpecChange(spec))
    await world.settle(world.done(op.id))
    assert world.status(op.id) == "SUCCEEDED"


async def test_a_push_of_the_tracked_tag_deploys_the_pushed_digest(world: World) -> None:
    await running_app(world)
    build = rebuilt("1", "b")
    world.engine.publish(build)
    world.pushes.record("team/app", "1", build.digest)
    await world.reconciler.tick()
    op, _create = world.services.operations("app")
    assert op.kind == "START_DEPLOYMENT"
    await world.settle(world.done(op.id))
    assert world.status(op.id) == "SUCCEEDED"
    revision = world.services.revisions("app")[0]
    assert (revision.number, revision.digest, revision.image) == (2, build.digest, APP_1)
    log = [line.line for line in world.services.operation(op.id).log]
    assert log[0].startswith(f"team/app:1 pushed ({build.digest}) by alice")
    (container,) = world.containers()
    assert container.image == f"localhost:5000/team/app@{build.digest}"


async def test_a_push_of_the_same_digest_does_nothing(world: World) -> None:
    await running_app(world)
    world.pushes.record("team/app", "1", app_image("1").digest)
    await world.reconciler.tick()
    assert len(world.services.operations("app")) == 1


@pytest.mark.parametrize(
    ("repository", "tag", "fields"),
    [
        ("team/app", "2", {}),  # another tag
        ("team/other", "1", {}),  # another repository
        ("team/app", None, {}),  # a push by digest only
        ("team/app", "1", {"auto_deploy": False}),  # turned off
    ],
)
async def test_pushes_that_do_not_concern_the_service(
    world: World, repository: str, tag: str | None, fields: dict[str, object]
) -> None:
    await running_app(world, APP_1, **fields)
    world.pushes.record(repository, tag, "sha256:" + "c" * 64)
    await world.reconciler.tick()
    assert len(world.services.operations("app")) == 1


async def test_an_image_from_another_registry_is_not_auto_deployed(world: World) -> None:
    world.engine.publish(FakeImage(ref="registry.example.com/team/app:1", respond=hello("x")))
    await running_app(world, image="registry.example.com/team/app:1")
    assert world.services.describe("app").config["auto_deploy"] is False
    world.pushes.record("team/app", "1", "sha256:" + "c" * 64)
    await world.reconciler.tick()
    assert len(world.services.operations("app")) == 1


async def test_pushes_during_an_operation_wait_and_the_newest_wins(world: World) -> None:
    _, create = world.services.create(SpecChange({"name": "app", "image": APP_1}))
    await world.reconciler.tick()  # the create is under way
    first, second = rebuilt("1", "d"), rebuilt("1", "e")
    world.engine.publish(first)
    world.pushes.record("team/app", "1", first.digest)
    world.engine.publish(second)
    world.pushes.record("team/app", "1", second.digest)
    await world.reconciler.tick()
    deploy, _ = world.services.operations("app")
    assert deploy.status == "PENDING"
    await world.settle(world.done(deploy.id))
    assert world.status(create.id) == "SUCCEEDED"
    assert world.status(deploy.id) == "SUCCEEDED"
    assert world.services.revisions("app")[0].digest == second.digest
    assert len(world.services.operations("app")) == 2


async def test_a_paused_service_ignores_pushes(world: World) -> None:
    await running_app(world)
    pause = world.services.pause("app")
    await world.settle(world.done(pause.id))
    world.pushes.record("team/app", "1", "sha256:" + "f" * 64)
    await world.reconciler.tick()
    assert world.services.operations("app")[0].kind == "PAUSE_SERVICE"


async def test_a_push_made_while_baepo_was_down_deploys_once_after_the_restart(
    world: World,
) -> None:
    await running_app(world)
    build = rebuilt("1", "b")
    world.engine.publish(build)
    world.pushes.record("team/app", "1", build.digest)  # and Baepo stops before a pass

    restarted = world.new_reconciler()
    await restarted.tick()
    again = world.new_reconciler()  # and once more, before the deployment is done
    await again.tick()

    deploys = [op for op in world.services.operations("app") if op.kind == "START_DEPLOYMENT"]
    assert len(deploys) == 1
    await world.settle(world.done(deploys[0].id), reconciler=again)
    assert world.services.revisions("app")[0].digest == build.digest
    await world.settle(lambda: True, reconciler=world.new_reconciler())
    assert len(world.services.operations("app")) == 2


async def test_a_push_that_brings_the_running_digest_back_replaces_a_waiting_one(
    world: World,
) -> None:
    await running_app(world)
    pause_free = world.services.update(
        "app", SpecChange({"env": {"A": "1"}})
    )  # keeps the next waiting
    other = rebuilt("1", "d")
    world.engine.publish(other)
    world.pushes.record("team/app", "1", other.digest)
    world.pushes.record("team/app", "1", app_image("1").digest)  # the tag moves back
    await world.reconciler.tick()
    deploy = world.services.operations("app")[0]
    assert deploy.kind == "START_DEPLOYMENT"
    await world.settle(world.done(deploy.id))
    assert world.status(pause_free.id) == "SUCCEEDED"
    assert world.services.revisions("app")[0].digest == app_image("1").digest


# -- the loop ---------------------------------------------------------------------------


async def test_a_push_while_a_delete_waits_is_ignored(world: World) -> None:
    await running_app(world)
    delete = world.services.delete("app")
    build = rebuilt("1", "b")
    world.engine.publish(build)
    world.pushes.record("team/app", "1", build.digest)
    await world.reconciler.tick()
    kinds = [op.kind for op in world.services.operations("app")]
    assert kinds == ["DELETE_SERVICE", "CREATE_SERVICE"]
    await world.settle(world.done(delete.id))
    assert world.status(delete.id) == "SUCCEEDED"


async def eventually(condition: Callable[[], bool], timeout_s: float = 10) -> bool:
    """Poll `condition` (letting the loop run) until true or `timeout_s` of real time."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.01)
    return False


IDLE_S = 3600


class NapWatch(SystemClock):
    """The system clock, telling whether the loop is in an idle nap (`sleep(IDLE_S)`) now."""

    def __init__(self) -> None:
        self.idle = False

    async def sleep(self, seconds: float) -> None:
        self.idle = seconds == IDLE_S
        try:
            await super().sleep(seconds)
        finally:
            self.idle = False


async def test_the_loop_is_woken_by_pushes_and_by_engine_events(tmp_path: Path) -> None:
    clock = NapWatch()
    engine = MemoryEngine(clock)
    engine.publish(app_image("1"))
    db = make_database(tmp_path / "loop.db")
    box = SecretBox(SecretBox.generate_key())
    registry = RegistryLink.of([REGISTRY], lambda: CREDENTIALS)
    bus = EventBus()
    router = MemoryRouter()
    # Passes every 20 ms while something moves, but an idle loop would sleep for an hour:
    # anything that happens within seconds once idle was an event's doing.
    timing = Timing(poll_s=0.02, idle_s=IDLE_S, deploy_timeout_s=30)
    pushes = MemoryPushLog()
    reconciler = Reconciler(
        db=db, engine=engine, router=router, prober=FakeProber(engine), clock=clock,
        secrets=box, domain="localhost", registry=registry, timing=timing, pushes=pushes,
    )  # fmt: skip
    unsubscribe = reconciler.subscribe(bus)
    services = Services(
        db=db, engine=engine, secrets=box, clock=clock, domain="localhost", registry=registry,
        reconciler=reconciler,
    )  # fmt: skip
    loop = asyncio.create_task(reconciler.run())
    try:
        _, op = services.create(SpecChange({"name": "app", "image": APP_1}))
        assert await eventually(lambda: services.operation(op.id).status == "SUCCEEDED")
        assert await eventually(lambda: clock.idle)  # nothing left to do: only a wake-up helps

        build = rebuilt("1", "a")
        engine.publish(build)
        pushes.record("team/app", "1", build.digest)  # committed by the registry, then:
        bus.publish(pushed("team/app", "1", build.digest))
        assert await eventually(lambda: services.describe("app").active_revision == 2)

        assert await eventually(lambda: clock.idle)
        (container,) = [c for c in engine.list({"baepo.service": "app"}) if c.running]
        engine.crash(container.id)
        assert await eventually(
            lambda: (
                any(e.kind == "crashed" for e in services.events("app"))
                and len(router.ready("app")) == 1
            )
        )
    finally:
        reconciler.stop()
        await asyncio.wait_for(loop, 5)
        unsubscribe()
        engine.close()
        db.dispose()


async def test_an_owner_who_may_no_longer_pull_gets_no_deploy(world: World) -> None:
    """Pull rights are asked again when an operation begins: a repository made private since
    (or an owner who lost the right) deploys nothing, pushes and redeploys alike."""
    allowed = {"team/app": True}
    reconciler = Reconciler(
        db=world.db, engine=world.engine, router=world.router, prober=world.prober,
        clock=world.clock, secrets=world.box, domain="localhost", registry=world.registry,
        timing=world.timing, pushes=world.pushes,
        may_pull=lambda owner, repository: owner == "alice" and allowed[repository],
    )  # fmt: skip
    _, create = world.services.create(SpecChange({"name": "app", "image": APP_1}), owner="alice")
    await world.settle(world.done(create.id), reconciler=reconciler)
    assert world.status(create.id) == "SUCCEEDED"
    allowed["team/app"] = False
    build = rebuilt("1", "b")
    world.engine.publish(build)
    world.pushes.record("team/app", "1", build.digest)
    await reconciler.tick()
    (push, _) = world.services.operations("app")
    await world.settle(world.done(push.id), reconciler=reconciler)
    assert world.status(push.id) == "FAILED"
    assert "alice may not pull team/app" in world.services.operation(push.id).message
    redeploy = world.services.deploy("app")
    await world.settle(world.done(redeploy.id), reconciler=reconciler)
    assert world.status(redeploy.id) == "FAILED"
    assert [c.image for c in world.containers(running=True)] == [
        f"localhost:5000/team/app@{app_image('1').digest}"
    ]
