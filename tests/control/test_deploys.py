"""The deploy flow on fakes: MemoryEngine, MemoryRouter, FakeProber, FakeClock.

What a user would notice: a deploy never leaves the service without a ready server, the new
revision gets requests only once healthy, a bad revision fails with its logs while the old one
keeps serving, and crashed or vanished instances come back.
"""

from __future__ import annotations

import dataclasses
import logging
import threading

import pytest

from baepo.control import Services, SpecChange, records
from baepo.control.operations import OperationKind
from baepo.router import Route, ServerState
from baepo.runtime import ContainerSpec, Instance
from tests.control.conftest import World, app_image

pytestmark = pytest.mark.anyio

APP_1 = "localhost:5000/team/app:1"
APP_2 = "localhost:5000/team/app:2"


async def create_app(world: World, **fields: object) -> str:
    _, op = world.services.create(SpecChange({"name": "app", "image": APP_1, **fields}))
    await world.settle(world.done(op.id))
    assert world.status(op.id) == "SUCCEEDED", world.services.operation(op.id).log
    (instance,) = world.containers(running=True)
    return str(instance.labels["baepo.instance"])


def serving_gaps(world: World) -> list[int]:
    """Indexes of route changes that left the service with no ready server after it had one."""
    seen_ready = False
    gaps = []
    for index, route in enumerate(world.router.history):
        ready = [s for s in route.servers if s.state is ServerState.READY]
        if ready:
            seen_ready = True
        elif seen_ready and not route.paused:
            gaps.append(index)
    return gaps


async def test_create_pulls_pins_starts_checks_and_routes(world: World) -> None:
    instance = await create_app(world)
    view = world.services.describe("app")
    assert view.status == "RUNNING"
    assert view.url == "https://app.localhost"
    assert (view.revision, view.active_revision) == (1, 1)
    assert [i.id for i in view.instances] == [instance]
    assert view.instances[0].health == "healthy"
    assert world.router.ready("app") == {instance}
    assert world.router.routes["app"].hostnames == ("app.localhost",)
    (revision,) = world.services.revisions("app")
    assert revision.digest == app_image("1").digest
    assert revision.active
    (container,) = world.containers()
    assert container.image == f"localhost:5000/team/app@{revision.digest}"  # pinned


async def test_a_deploy_moves_traffic_only_once_the_new_revision_is_healthy(world: World) -> None:
    old = await create_app(world)
    world.prober.sick_images.add(app_image("2").digest)
    op = world.services.deploy("app", image=APP_2)
    await world.settle(lambda: len(world.containers(running=True)) == 2)
    for _ in range(20):  # the new one keeps failing its check: nothing changes for traffic
        await world.reconciler.tick()
        world.clock.advance(0.25)
    assert world.router.ready("app") == {old}
    assert world.status(op.id) == "IN_PROGRESS"
    assert world.services.describe("app").status == "OPERATION_IN_PROGRESS"

    world.prober.sick_images.clear()
    await world.settle(world.done(op.id))
    assert world.status(op.id) == "SUCCEEDED"
    (new,) = world.containers(running=True)
    assert new.labels["baepo.revision"] == "2"
    assert world.router.ready("app") == {new.labels["baepo.instance"]}
    assert world.containers() == [new]  # the old one is stopped and removed
    assert serving_gaps(world) == []
    view = world.services.describe("app")
    assert (view.status, view.revision, view.active_revision) == ("RUNNING", 2, 2)
    lines = [line.line for line in world.services.operation(op.id).log]
    assert any("passed its health check" in line for line in lines)
    assert any(line.startswith("draining") for line in lines)
    assert any("stopped and removed" in line for line in lines)


async def test_draining_waits_for_requests_in_flight_up_to_the_drain_timeout(
    world: World,
) -> None:
    old = await create_app(world)
    world.router.in_flight["app"] = {old: 4}  # long requests that never finish
    op = world.services.deploy("app", image=APP_2)
    await world.settle(
        lambda: (
            (s := world.router.routes["app"].server(old)) is not None
            and s.state is ServerState.DRAIN
        )
    )
    drain_began = world.clock.monotonic()
    await world.settle(lambda: old not in {s.name for s in world.router.routes["app"].servers})
    waited = world.clock.monotonic() - drain_began
    assert 30 <= waited < 31  # drained for the whole timeout, in milliseconds of real time
    await world.settle(world.done(op.id))
    assert world.status(op.id) == "SUCCEEDED"


async def test_draining_ends_as_soon_as_nothing_is_in_flight(world: World) -> None:
    old = await create_app(world)
    world.router.in_flight["app"] = {old: 2}
    op = world.services.deploy("app", image=APP_2)
    await world.settle(
        lambda: (
            (s := world.router.routes["app"].server(old)) is not None
            and s.state is ServerState.DRAIN
        )
    )
    for _ in range(8):
        await world.reconciler.tick()
        world.clock.advance(0.25)
    assert world.router.routes["app"].server(old) is not None  # still draining
    world.router.in_flight["app"] = {old: 0}
    passes = await world.settle(world.done(op.id))
    # Far sooner than the drain timeout (30 s: 120 passes of 0.25 s). A pass can end before
    # the stop it asked for (run in a worker thread) is done, so the count varies a little on
    # a busy machine: the bound is a quarter of the timeout, not a pass count.
    assert passes * 0.25 < 30 / 4
    assert world.status(op.id) == "SUCCEEDED"


async def test_a_revision_that_never_gets_healthy_fails_and_the_old_one_keeps_serving(
    world: World,
) -> None:
    old = await create_app(world)
    broken = app_image("3", respond=None, logs=["boom: refusing to listen on :8080"])
    world.engine.publish(broken)
    world.prober.sick_images.add(broken.digest)
    op = world.services.deploy("app", image="localhost:5000/team/app:3")
    await world.settle(world.done(op.id))
    result = world.services.operation(op.id)
    assert result.status == "FAILED"
    assert "revision 2 did not pass its health check (TCP connect) within 60 s" in result.message
    assert "revision 1 keeps serving" in result.message
    lines = "\n".join(line.line for line in result.log)
    assert "boom: refusing to listen on :8080" in lines  # the new container's last log lines
    assert "connection refused" in lines  # and its last health check
    assert world.router.ready("app") == {old}
    assert serving_gaps(world) == []
    await world.settle(lambda: len(world.containers()) == 1)
    (left,) = world.containers()
    assert left.labels["baepo.instance"] == old
    view = world.services.describe("app")
    assert (view.status, view.revision, view.active_revision) == ("RUNNING", 1, 1)
    assert view.config["image"] == APP_1


async def test_a_revision_that_crashes_at_start_fails_at_once(world: World) -> None:
    old = await create_app(world)
    world.engine.publish(app_image("4", exit_code=2, logs=["fatal: DATABASE_URL is not set"]))
    op = world.services.deploy("app", image="localhost:5000/team/app:4")
    passes = await world.settle(world.done(op.id))
    assert passes < 10  # not the 60 s deadline
    result = world.services.operation(op.id)
    assert result.status == "FAILED"
    assert "exited with code 2 before passing its health check" in result.message
    assert "fatal: DATABASE_URL is not set" in "\n".join(line.line for line in result.log)
    assert world.router.ready("app") == {old}


async def test_a_crashed_instance_is_replaced_and_the_event_recorded(world: World) -> None:
    old = await create_app(world)
    (container,) = world.containers(running=True)
    world.engine.crash(container.id, exit_code=139, log="segfault")
    await world.settle(lambda: bool(world.router.ready("app") - {old}))
    (replacement,) = world.containers()
    assert replacement.running and replacement.labels["baepo.instance"] != old
    (event,) = world.services.events("app")
    assert event.kind == "crashed" and event.instance == old
    assert "exited with code 139; replacing it" in event.message


async def test_a_removed_instance_is_replaced(world: World) -> None:
    old = await create_app(world)
    (container,) = world.containers()
    world.engine.remove(container.id)
    await world.settle(lambda: bool(world.router.ready("app") - {old}))
    assert [e.kind for e in world.services.events("app")] == ["removed"]
    assert len(world.containers()) == 1


async def test_an_instance_lost_with_its_node_is_replaced_and_the_reason_recorded(
    world: World,
) -> None:
    old = await create_app(world)
    (container,) = world.containers()
    world.engine.lose(container.id, "node baepo-swarm-3 is down")
    await world.settle(lambda: bool(world.router.ready("app") - {old}))
    (event,) = world.services.events("app")
    assert event.kind == "removed" and event.instance == old
    assert "is lost: node baepo-swarm-3 is down; replacing it" in event.message
    assert len(world.containers()) == 1


async def test_an_instance_the_router_finds_down_is_replaced(world: World) -> None:
    old = await create_app(world)
    (container,) = world.containers()
    check = world.router.routes["app"].check
    assert check is not None and (check.path, check.interval_s, check.fall) == (None, 5, 5)
    probes = world.prober.probes
    for _ in range(40):  # serving: the router checks it, Baepo's prober does not
        await world.reconciler.tick()
        world.clock.advance(0.25)
    assert world.prober.probes == probes
    world.router.down["app"] = {old: "Layer4 connection problem, info: Connection refused"}
    await world.settle(lambda: bool(world.router.ready("app") - {old}))
    await world.settle(lambda: len(world.containers()) == 1)
    assert world.containers()[0].id != container.id
    events = world.services.events("app")
    assert events[0].kind == "unhealthy"
    assert "failed 5 health checks in a row" in events[0].message
    assert "Connection refused" in events[0].message
    assert serving_gaps(world) == []


async def test_an_http_check_is_the_routers_too(world: World) -> None:
    await create_app(world, health_check={"protocol": "http", "path": "/health's"})
    check = world.router.routes["app"].check
    assert check is not None and check.path == "/health%27s"


async def test_scaling_the_minimum_adds_instances_without_a_new_revision(world: World) -> None:
    await create_app(world)
    op = world.services.update("app", SpecChange({"min_instances": 3, "max_concurrency": 10}))
    await world.settle(world.done(op.id))
    assert world.status(op.id) == "SUCCEEDED"
    assert len(world.router.ready("app")) == 3
    assert world.router.routes["app"].max_concurrency == 10
    assert world.services.describe("app").revision == 1


async def test_an_update_of_the_environment_makes_a_new_revision(world: World) -> None:
    await create_app(world)
    op = world.services.update("app", SpecChange({"env": {"MESSAGE": "hi"}}))
    await world.settle(world.done(op.id))
    assert world.status(op.id) == "SUCCEEDED"
    assert [r.number for r in world.services.revisions("app")] == [2, 1]
    assert world.containers()[0].labels["baepo.revision"] == "2"


async def test_rollback_serves_an_earlier_revision_again(world: World) -> None:
    await create_app(world)
    deploy = world.services.deploy("app", image=APP_2)
    await world.settle(world.done(deploy.id))
    op = world.services.rollback("app", 1)
    await world.settle(world.done(op.id))
    assert world.status(op.id) == "SUCCEEDED"
    view = world.services.describe("app")
    assert (view.revision, view.active_revision) == (1, 1)
    assert view.config["image"] == APP_1
    (container,) = world.containers()
    assert container.image.endswith(app_image("1").digest)
    assert [(r.number, r.active) for r in world.services.revisions("app")] == [
        (2, False),
        (1, True),
    ]
    assert serving_gaps(world) == []


async def test_pause_keeps_the_url_with_a_paused_page_and_resume_brings_it_back(
    world: World,
) -> None:
    await create_app(world)
    pause = world.services.pause("app")
    await world.settle(world.done(pause.id))
    assert world.status(pause.id) == "SUCCEEDED"
    assert world.services.describe("app").status == "PAUSED"
    assert world.containers() == []
    route = world.router.routes["app"]
    assert route.paused and route.servers == () and route.hostnames == ("app.localhost",)

    resume = world.services.resume("app")
    await world.settle(world.done(resume.id))
    assert world.status(resume.id) == "SUCCEEDED"
    view = world.services.describe("app")
    assert (view.status, view.revision) == ("RUNNING", 1)
    assert not world.router.routes["app"].paused
    assert len(world.router.ready("app")) == 1


async def test_delete_stops_everything_and_frees_the_name(world: World) -> None:
    await create_app(world)
    op = world.services.delete("app")
    await world.settle(world.done(op.id))
    assert world.status(op.id) == "SUCCEEDED"
    assert world.containers() == []
    assert "app" not in world.router.routes
    assert world.services.list() == []
    assert world.services.operation(op.id).service == "app"  # still readable
    _, again = world.services.create(SpecChange({"name": "app", "image": APP_2}))
    await world.settle(world.done(again.id))
    assert world.status(again.id) == "SUCCEEDED"


async def test_a_deploy_asked_for_while_a_delete_waits_fails_once_the_service_is_gone(
    world: World,
) -> None:
    await create_app(world)
    delete = world.services.delete("app")
    with world.db.session() as s, s.begin():  # slipped in behind the delete (a push, say)
        service = records.live_service(s, "app")
        late = records.add_operation(s, service, OperationKind.START_DEPLOYMENT, world.clock.now())
    await world.settle(world.done(delete.id))
    assert world.status(delete.id) == "SUCCEEDED"
    ended = world.services.operation(late.id)
    assert (ended.status, ended.message) == ("FAILED", "the service was deleted")


async def test_of_two_services_given_one_domain_the_first_to_begin_has_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("aaa", "bbb"):
        _, op = world.services.create(SpecChange({"name": name, "image": APP_1}))
        await world.settle(world.done(op.id))
    # Admitted together, as two databases' isolation rules may allow: begin settles it.
    monkeypatch.setattr(Services, "_check_domains", lambda *_: None)
    shop = {"custom_domains": ["shop.example.com"]}
    ops = {name: world.services.update(name, SpecChange(shop)) for name in ("aaa", "bbb")}
    _, ops["ccc"] = world.services.create(SpecChange({"name": "ccc", "image": APP_1, **shop}))
    monkeypatch.undo()
    for op in ops.values():
        await world.settle(world.done(op.id))
    # Each service's pass begins its own operation: which begins first is the engine's and
    # the database's timing (usually aaa's, the oldest), not the order they were asked in.
    (winner,) = [name for name, op in ops.items() if world.status(op.id) == "SUCCEEDED"]
    assert world.router.routes[winner].hostnames == (f"{winner}.localhost", "shop.example.com")
    for loser in set(ops) - {winner}:
        failed = world.services.operation(ops[loser].id)
        expected = f"shop.example.com is already used by {winner}"
        if loser == "ccc":  # a create: the service stays, without the domain
            expected += "; removed from ccc's custom domains"
        else:
            assert world.router.routes[loser].hostnames == (f"{loser}.localhost",)
        assert failed.status == "FAILED" and failed.message == expected
        assert world.services.describe(loser).config["custom_domains"] == []
    for name in {"aaa", "bbb", winner}:  # none is wedged by another's claim
        deploy = world.services.deploy(name, APP_2)
        await world.settle(world.done(deploy.id))
        assert world.status(deploy.id) == "SUCCEEDED"


async def test_a_domain_the_router_refuses_is_not_kept(world: World) -> None:
    await create_app(world)
    world.router.routes["legacy"] = Route(name="legacy", hostnames=("shop.example.com",))
    update = world.services.update("app", SpecChange({"custom_domains": ["shop.example.com"]}))
    await world.settle(world.done(update.id), step_s=1)
    failed = world.services.operation(update.id)
    assert failed.status == "FAILED" and "not done within" in failed.message
    assert world.services.describe("app").config["custom_domains"] == []
    deploy = world.services.deploy("app", APP_2)
    await world.settle(world.done(deploy.id))
    assert world.status(deploy.id) == "SUCCEEDED"
    assert world.router.routes["app"].hostnames == ("app.localhost",)


async def test_an_image_that_cannot_be_pulled_fails_the_create(world: World) -> None:
    _, op = world.services.create(
        SpecChange({"name": "app", "image": "localhost:5000/team/nope:1"})
    )
    await world.settle(world.done(op.id))
    result = world.services.operation(op.id)
    assert result.status == "FAILED"
    assert "cannot pull localhost:5000/team/nope:1" in result.message
    assert world.services.describe("app").status == "CREATE_FAILED"
    assert world.containers() == []


async def test_a_local_image_runs_unpinned(world: World) -> None:
    _, op = world.services.create(SpecChange({"name": "hello", "image": "baepo-test/hello:1"}))
    await world.settle(world.done(op.id))
    assert world.status(op.id) == "SUCCEEDED"
    (revision,) = world.services.revisions("hello")
    assert revision.digest is None
    log = [line.line for line in world.services.operation(op.id).log]
    assert any("not in a registry; using the local image" in line for line in log)


async def test_the_router_being_down_is_retried_not_fatal(world: World) -> None:
    _, op = world.services.create(SpecChange({"name": "app", "image": APP_1}))
    world.router.available = False
    for _ in range(10):
        await world.reconciler.tick()
        world.clock.advance(0.25)
    assert world.status(op.id) == "IN_PROGRESS"
    world.router.available = True
    await world.settle(world.done(op.id))
    assert world.status(op.id) == "SUCCEEDED"
    assert len(world.containers()) == 1


async def test_containers_of_no_service_are_removed_but_only_this_installations(
    world: World,
) -> None:
    from baepo.control.instances import LABEL_INSTALLATION
    from baepo.runtime import ContainerSpec

    ghost = {"baepo.service": "ghost", "baepo.revision": "1", "baepo.instance": "ghost-1-abc"}
    ours = {**ghost, LABEL_INSTALLATION: world.box.fingerprint}
    theirs = {**ghost, "baepo.instance": "ghost-1-def", LABEL_INSTALLATION: "another-baepo"}
    world.engine.run(ContainerSpec(image="baepo-test/hello:1", labels=ours))
    world.engine.run(ContainerSpec(image="baepo-test/hello:1", labels=theirs))
    world.engine.run(ContainerSpec(image="baepo-test/hello:1", labels={"baepo.pipeline": "x"}))

    def left() -> list[str]:
        return [c.labels["baepo.instance"] for c in world.engine.list({"baepo.service": "ghost"})]

    await world.settle(lambda: left() == ["ghost-1-def"], max_passes=20)
    assert len(world.engine.list({"baepo.pipeline": "x"})) == 1  # not ours to touch


async def test_an_engine_that_is_away_delays_operations_without_failing_them(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    _, op = world.services.create(SpecChange({"name": "app", "image": APP_1}))
    world.engine.set_available(False)
    with caplog.at_level(logging.INFO, logger="baepo.control.reconciler"):
        for _ in range(20):
            await world.reconciler.tick()
            world.clock.advance(0.25)
        assert world.status(op.id) == "PENDING"
        log = world.services.operation(op.id).log
        waiting = [line.line for line in log if "waiting" in line.line]
        assert len(waiting) == 1 and waiting[0].startswith("waiting for the engine: ")  # said once
        world.engine.set_available(True)
        await world.settle(world.done(op.id))
    assert world.status(op.id) == "SUCCEEDED"
    said = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert said == [  # once when it begins and once when it ends, not at each of 20 passes
        (
            "WARNING",
            "the memory engine was made unavailable by the test; services wait until it answers",
        ),
        ("INFO", "the engine answers again: services go on"),
    ]


async def test_a_slow_stop_of_one_service_holds_up_no_other_service(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An old instance that takes its whole stop timeout to go (an app that ignores SIGTERM)
    stops in the background: another service's deploy meanwhile runs to its end."""
    for name in ("slow", "quick"):
        _, op = world.services.create(SpecChange({"name": name, "image": APP_1}))
        await world.settle(world.done(op.id))
    (slow_v1,) = world.containers("slow")
    release = threading.Event()
    real_stop = world.engine.stop

    def stop(instance_id: str, timeout_s: float = 10) -> None:
        if instance_id == slow_v1.id:
            release.wait(30)
        real_stop(instance_id, timeout_s)

    monkeypatch.setattr(world.engine, "stop", stop)
    try:
        slow = world.services.deploy("slow", APP_2)
        await world.settle(lambda: world.router.ready("slow") != {slow_v1.labels["baepo.instance"]})
        quick = world.services.deploy("quick", APP_2)
        await world.settle(world.done(quick.id), max_passes=100)
        assert world.status(quick.id) == "SUCCEEDED"
        assert world.status(slow.id) == "IN_PROGRESS"  # its old instance is still stopping
    finally:
        release.set()
    await world.settle(world.done(slow.id))
    assert world.status(slow.id) == "SUCCEEDED"
    assert [c.labels["baepo.revision"] for c in world.containers("slow")] == ["2"]


async def test_a_slow_pull_of_one_service_holds_up_no_other_service(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pull that takes minutes (a large image, a registry that hangs) begins its operation
    in the background: another service's deploy meanwhile runs to its end."""
    for name in ("big", "quick"):
        _, op = world.services.create(SpecChange({"name": name, "image": APP_1}))
        await world.settle(world.done(op.id))
    release = threading.Event()
    real_pull = world.engine.pull

    def pull(ref: str, auth: object = None) -> object:
        if "team/app:2" in ref and not release.is_set() and world.status(big.id) == "PENDING":
            release.wait(30)
        return real_pull(ref, auth)  # type: ignore[arg-type]

    monkeypatch.setattr(world.engine, "pull", pull)
    big = world.services.deploy("big", APP_2)
    try:
        await world.reconciler.tick()  # big's pull begins, and hangs
        quick = world.services.deploy("quick", APP_1)
        await world.settle(world.done(quick.id), max_passes=100)
        assert world.status(quick.id) == "SUCCEEDED"
        assert world.status(big.id) == "PENDING"
    finally:
        release.set()
    await world.settle(world.done(big.id))
    assert world.status(big.id) == "SUCCEEDED"


async def test_a_service_stuck_in_the_engine_costs_only_itself(world: World) -> None:
    """An engine call that hangs on one service's container (runc on a hostile spec) must not
    hold up every other service's deploys while it waits for its timeout."""
    release = threading.Event()
    entered = threading.Event()
    inside = threading.Event()  # the stuck call is under way right now
    real_run = world.engine.run

    def run(spec: ContainerSpec) -> Instance:
        if spec.labels.get("baepo.service") == "stuck":
            entered.set()
            inside.set()
            release.wait(30)  # a hanging runc, until its timeout
            inside.clear()
        return real_run(spec)

    world.engine.run = run  # type: ignore[method-assign]
    world.reconciler.timing = dataclasses.replace(world.reconciler.timing, pass_wait_s=0.05)
    try:
        world.services.create(SpecChange({"name": "stuck", "image": APP_1}))
        await world.settle(entered.is_set, max_passes=40)
        _, fine = world.services.create(SpecChange({"name": "fine", "image": APP_1}))
        passes = await world.settle(world.done(fine.id), max_passes=40)
        assert world.status(fine.id) == "SUCCEEDED" and passes < 40
        assert inside.is_set(), "the other service waited for the stuck call to end"
        assert world.services.describe("stuck").status == "OPERATION_IN_PROGRESS"
    finally:
        release.set()
