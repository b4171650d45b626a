"""Table tests of `plan(desired, observed)`: no engine, no router, no clock, no sleeping.

Actions are summarized as short strings: `start r2`, `stop a1`, `remove a1`, `event crashed
a1`, `route a1=ready,b1=drain [paused]`, `unroute`, `succeeded`, `failed`. Instances `aN` are of
revision 1, `bN` of revision 2.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from baepo.control.operations import OperationKind
from baepo.control.planning import (
    Action,
    Desired,
    DesiredOperation,
    FinishOperation,
    Health,
    Observed,
    ObservedInstance,
    RecordEvent,
    RemoveInstance,
    RemoveRoute,
    SetRoute,
    StartInstance,
    StopInstance,
    plan,
)
from baepo.router import Route, Server, ServerState

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
HOSTS = ("app.localhost",)
READY, DRAIN = ServerState.READY, ServerState.DRAIN
STARTING, HEALTHY, UNHEALTHY = Health.STARTING, Health.HEALTHY, Health.UNHEALTHY


def address(name: str) -> str:
    return f"127.0.0.1:{20000 + sum(ord(c) * 31**i for i, c in enumerate(name)) % 40000}"


def inst(
    name: str, health: Health = HEALTHY, running: bool = True, exit_code: int | None = None
) -> ObservedInstance:
    revision = {"a": 1, "b": 2}[name[0]]
    return ObservedInstance(
        id=f"container-{name}",
        name=name,
        revision=revision,
        running=running,
        exit_code=exit_code if not running else None,
        address=address(name) if running else None,
        health=health,
    )


def dead(name: str, exit_code: int | None = 1, health: Health = HEALTHY) -> ObservedInstance:
    return inst(name, health=health, running=False, exit_code=exit_code)


def route(*servers: tuple[str, ServerState], paused: bool = False) -> Route:
    return Route(
        name="app",
        hostnames=HOSTS,
        servers=tuple(Server(n, address(n), state) for n, state in servers),
        paused=paused,
    )


def operation(
    kind: OperationKind = OperationKind.START_DEPLOYMENT, age_s: float = 5
) -> DesiredOperation:
    started = NOW - timedelta(seconds=age_s)
    return DesiredOperation("op1", kind, started, started + timedelta(seconds=60))


def desired(**fields: object) -> Desired:
    base = Desired(service="app", hostnames=HOSTS, revision=1, instances=1)
    return dataclasses.replace(base, **fields)  # type: ignore[arg-type]


def summary(action: Action) -> str:
    if isinstance(action, StartInstance):
        return f"start r{action.revision}"
    if isinstance(action, StopInstance):
        return f"stop {action.instance.name}"
    if isinstance(action, RemoveInstance):
        return f"remove {action.instance.name}"
    if isinstance(action, RecordEvent):
        return f"event {action.kind} {action.instance}"
    if isinstance(action, RemoveRoute):
        return "unroute"
    if isinstance(action, SetRoute):
        servers = ",".join(f"{s.name}={s.state}" for s in action.route.servers)
        return f"route {servers}" + (" paused" if action.route.paused else "")
    assert isinstance(action, FinishOperation)
    return "succeeded" if action.succeeded else "failed"


@dataclass(frozen=True)
class Case:
    name: str
    desired: Desired
    instances: tuple[ObservedInstance, ...] = ()
    route: Route | None = None
    in_flight: dict[str, int] = field(default_factory=dict)
    draining_for_s: float = 0
    expected: tuple[str, ...] = ()


DEPLOY_2 = desired(revision=2, operation=operation())
CASES = [
    # -- a new service
    Case("first instance, no route before it serves", desired(), expected=("start r1",)),
    Case("waits while its instance starts", desired(), (inst("a1", STARTING),)),
    Case("routes it once healthy", desired(), (inst("a1"),), expected=("route a1=ready",)),
    Case(
        "an empty route stays (a 503 page, not a 404)", desired(), (inst("a1", STARTING),), route()
    ),
    Case(
        "a service deleted before it served gets no route",
        desired(deleting=True, instances=0),
        (inst("a1"),),
        expected=("stop a1",),
    ),
    Case("steady state: nothing to do", desired(), (inst("a1"),), route(("a1", READY))),
    Case(
        "scales up",
        desired(instances=3),
        (inst("a1"),),
        route(("a1", READY)),
        expected=("start r1", "start r1"),
    ),
    Case(
        "scales down by draining the surplus",
        desired(),
        (inst("a1"), inst("a2")),
        route(("a1", READY), ("a2", READY)),
        expected=("route a1=ready,a2=drain",),
    ),
    Case(
        "surplus that is still starting goes first",
        desired(instances=2),
        (inst("a1"), inst("a2"), inst("a3", STARTING)),
        route(("a1", READY), ("a2", READY)),
        expected=("stop a3",),
    ),
    # -- a deployment of revision 2 while revision 1 serves
    Case(
        "deploy starts the new revision",
        DEPLOY_2,
        (inst("a1"),),
        route(("a1", READY)),
        expected=("start r2",),
    ),
    Case(
        "old keeps serving while new starts",
        DEPLOY_2,
        (inst("a1"), inst("b1", STARTING)),
        route(("a1", READY)),
    ),
    Case(
        "new goes next to old once healthy",
        DEPLOY_2,
        (inst("a1"), inst("b1")),
        route(("a1", READY)),
        expected=("route a1=ready,b1=ready",),
    ),
    Case(
        "old drains once new is routed",
        DEPLOY_2,
        (inst("a1"), inst("b1")),
        route(("a1", READY), ("b1", READY)),
        expected=("route a1=drain,b1=ready",),
    ),
    Case(
        "draining waits for requests in flight",
        DEPLOY_2,
        (inst("a1"), inst("b1")),
        route(("a1", DRAIN), ("b1", READY)),
        in_flight={"a1": 3},
        draining_for_s=10,
    ),
    Case(
        "drained: leaves the route, then stops",
        DEPLOY_2,
        (inst("a1"), inst("b1")),
        route(("a1", DRAIN), ("b1", READY)),
        expected=("route b1=ready", "stop a1"),
    ),
    Case(
        "drain is bounded by the drain timeout",
        DEPLOY_2,
        (inst("a1"), inst("b1")),
        route(("a1", DRAIN), ("b1", READY)),
        in_flight={"a1": 3},
        draining_for_s=30,
        expected=("route b1=ready", "stop a1"),
    ),
    Case(
        "converged: the deployment succeeds",
        DEPLOY_2,
        (inst("b1"),),
        route(("b1", READY)),
        expected=("succeeded",),
    ),
    Case(
        "an old instance never routed is left alone before cutover",
        DEPLOY_2,
        (inst("a0"), inst("a1"), inst("b1", STARTING)),
        route(("a1", READY)),
    ),
    Case(
        "an old instance never routed is stopped at cutover",
        DEPLOY_2,
        (inst("a0"), inst("b1")),
        route(("b1", READY)),
        expected=("stop a0",),
    ),
    Case(
        "deadline passed before healthy: fails, nothing else",
        desired(revision=2, operation=operation(age_s=61)),
        (inst("a1"), dead("b0", health=STARTING), inst("b1", STARTING)),
        route(("a1", READY)),
        expected=("failed",),
    ),
    Case(
        "new instance crashes while starting: fails at once",
        DEPLOY_2,
        (inst("a1"), dead("b1", health=STARTING)),
        route(("a1", READY)),
        expected=("failed",),
    ),
    Case(
        "after a failed deploy the new instances go",
        desired(revision=1),
        (inst("a1"), inst("b1", STARTING)),
        route(("a1", READY)),
        expected=("stop b1",),
    ),
    Case(
        "a healthy deploy late in draining does not fail",
        desired(revision=2, operation=operation(age_s=65)),
        (inst("a1"), inst("b1")),
        route(("a1", DRAIN), ("b1", READY)),
        in_flight={"a1": 1},
        draining_for_s=5,
    ),
    Case(
        "stuck long after cutover: ends FAILED",
        desired(revision=2, operation=operation(age_s=200)),
        (inst("a1"), inst("b1")),
        route(("a1", READY), ("b1", READY)),
        expected=("failed",),
    ),
    # -- failures while serving
    Case(
        "a crashed instance is removed and replaced",
        desired(),
        (dead("a1"),),
        route(("a1", READY)),
        expected=("remove a1", "event crashed a1", "start r1", "route "),
    ),
    Case(
        "an instance being removed outside Baepo (no exit code) is a removal, not a crash",
        desired(),
        (dead("a1", exit_code=None),),
        route(("a1", READY)),
        expected=("remove a1", "event removed a1", "start r1", "route "),
    ),
    Case(
        "a vanished instance is replaced",
        desired(),
        (),
        route(("a1", READY)),
        expected=("start r1", "event removed a1", "route "),
    ),
    Case(
        "an unhealthy instance serves until its replacement is up",
        desired(),
        (inst("a1", UNHEALTHY),),
        route(("a1", READY)),
        expected=("start r1",),
    ),
    Case(
        "then it drains",
        desired(),
        (inst("a1", UNHEALTHY), inst("a2")),
        route(("a1", READY), ("a2", READY)),
        expected=("route a1=drain,a2=ready",),
    ),
    Case(
        "an old instance's exit is cleaned up quietly",
        DEPLOY_2,
        (dead("a1", exit_code=137), inst("b1")),
        route(("b1", READY)),
        expected=("remove a1",),
    ),
    # -- pause and resume
    Case(
        "pause drains behind the paused page",
        desired(paused=True, operation=operation(OperationKind.PAUSE_SERVICE)),
        (inst("a1"),),
        route(("a1", READY)),
        expected=("route a1=drain paused",),
    ),
    Case(
        "pause stops what drained",
        desired(paused=True, operation=operation(OperationKind.PAUSE_SERVICE)),
        (inst("a1"),),
        route(("a1", DRAIN), paused=True),
        expected=("route  paused", "stop a1"),
    ),
    Case(
        "paused and nothing runs: the pause succeeds",
        desired(paused=True, operation=operation(OperationKind.PAUSE_SERVICE)),
        (),
        route(paused=True),
        expected=("succeeded",),
    ),
    Case(
        "resume starts the revision behind the paused page",
        desired(operation=operation(OperationKind.RESUME_SERVICE)),
        (),
        route(paused=True),
        expected=("start r1",),
    ),
    Case(
        "resume routes it, still paused",
        desired(operation=operation(OperationKind.RESUME_SERVICE)),
        (inst("a1"),),
        route(paused=True),
        expected=("route a1=ready paused",),
    ),
    Case(
        "resume lifts the paused page once routed",
        desired(operation=operation(OperationKind.RESUME_SERVICE)),
        (inst("a1"),),
        route(("a1", READY), paused=True),
        expected=("route a1=ready",),
    ),
    # -- delete
    Case(
        "delete drains",
        desired(deleting=True, operation=operation(OperationKind.DELETE_SERVICE)),
        (inst("a1"),),
        route(("a1", READY)),
        expected=("route a1=drain",),
    ),
    Case(
        "delete stops what drained",
        desired(deleting=True, operation=operation(OperationKind.DELETE_SERVICE)),
        (inst("a1"),),
        route(("a1", DRAIN)),
        expected=("route ", "stop a1"),
    ),
    Case(
        "delete removes the route last",
        desired(deleting=True, operation=operation(OperationKind.DELETE_SERVICE)),
        (dead("a1", 0),),
        route(),
        expected=("remove a1", "unroute"),
    ),
    Case(
        "deleted",
        desired(deleting=True, operation=operation(OperationKind.DELETE_SERVICE)),
        expected=("succeeded",),
    ),
    Case(
        "a delete past its deadline fails",
        desired(deleting=True, operation=operation(OperationKind.DELETE_SERVICE, age_s=61)),
        (inst("a1"),),
        route(("a1", DRAIN)),
        in_flight={"a1": 1},
        expected=("failed",),
    ),
    # -- configuration
    Case(
        "custom domains and concurrency reach the route",
        desired(hostnames=(*HOSTS, "www.example.com"), max_concurrency=10),
        (inst("a1"),),
        route(("a1", READY)),
        expected=("route a1=ready",),
    ),
    # -- scale to zero (min_instances 0)
    Case(
        "at zero, drains the last instance first",
        desired(instances=0),
        (inst("a1"),),
        route(("a1", READY)),
        expected=("route a1=drain",),
    ),
    Case(
        "at zero, stops it once drained; the route stays, with no server",
        desired(instances=0),
        (inst("a1"),),
        route(("a1", DRAIN)),
        expected=("route ", "stop a1"),
    ),
    Case("at zero, nothing to do", desired(instances=0), (), route()),
    Case(
        "a request at zero: one instance", desired(instances=1), (), route(), expected=("start r1",)
    ),
    Case(
        "a deploy at zero starts one instance to prove the revision",
        desired(instances=0, revision=2, operation=operation()),
        (),
        route(),
        expected=("start r2",),
    ),
    Case(
        "a deploy at zero succeeds once that instance serves",
        desired(instances=0, revision=2, operation=operation()),
        (inst("b1"),),
        route(("b1", READY)),
        expected=("succeeded",),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_plan(case: Case) -> None:
    drain_started = {
        s.name: NOW - timedelta(seconds=case.draining_for_s)
        for s in (case.route.servers if case.route else ())
        if s.state is not READY
    }
    observed = Observed(
        now=NOW,
        instances=case.instances,
        route=case.route,
        in_flight=case.in_flight,
        drain_started=drain_started,
    )
    assert tuple(summary(a) for a in plan(case.desired, observed)) == case.expected


def test_a_deploy_ends_once_every_router_carries_its_route() -> None:
    """Another process's router still on an older table would answer the old revision (or,
    for a new service, not know its host name): `--wait` returns once none is behind."""
    behind = Observed(NOW, (inst("b1"),), route(("b1", READY)), routers_behind=1)
    assert plan(DEPLOY_2, behind) == []
    caught_up = dataclasses.replace(behind, routers_behind=0)
    assert [summary(a) for a in plan(DEPLOY_2, caught_up)] == ["succeeded"]
    late = dataclasses.replace(behind, now=NOW + timedelta(hours=1))
    [finish] = plan(DEPLOY_2, late)
    assert isinstance(finish, FinishOperation) and not finish.succeeded
    assert finish.message.endswith("waiting for 1 other router(s) to carry the route")


def test_a_failed_deploy_names_its_cause_and_the_instances_whose_logs_explain_it() -> None:
    crashed = dead("b1", exit_code=3, health=STARTING)
    actions = plan(DEPLOY_2, Observed(NOW, (inst("a1"), crashed), route(("a1", READY))))
    assert len(actions) == 1 and isinstance(actions[0], FinishOperation)
    finish = actions[0]
    assert not finish.succeeded and finish.revert
    assert "b1" in finish.message and "code 3" in finish.message
    assert finish.logs_from == (crashed,)


def test_a_deadline_failure_says_which_check_did_not_pass() -> None:
    late = desired(revision=2, operation=operation(age_s=61), check="health check (HTTP GET /hz)")
    starting = inst("b1", STARTING)
    actions = plan(late, Observed(NOW, (inst("a1"), starting), route(("a1", READY))))
    assert isinstance(actions[0], FinishOperation)
    assert "revision 2 did not pass its health check (HTTP GET /hz) within 60 s" in (
        actions[0].message
    )
    assert actions[0].logs_from == (starting,)


def test_a_route_set_carries_hostnames_and_concurrency() -> None:
    want = desired(hostnames=(*HOSTS, "www.example.com"), max_concurrency=10)
    (action,) = plan(want, Observed(NOW, (inst("a1"),), route(("a1", READY))))
    assert isinstance(action, SetRoute)
    assert action.route.hostnames == ("app.localhost", "www.example.com")
    assert action.route.max_concurrency == 10
    assert "max concurrency now 10" in action.changes


def test_plan_is_pure() -> None:
    observed = Observed(NOW, (inst("a1"), inst("b1")), route(("a1", READY)))
    assert plan(DEPLOY_2, observed) == plan(DEPLOY_2, observed)


@pytest.mark.parametrize(
    ("routed_hosts", "reverted"),
    [
        pytest.param((*HOSTS, "www.example.com"), False, id="routed: keeps what it asked for"),
        pytest.param(HOSTS, True, id="the router never took its host names: put back"),
    ],
)
def test_a_deploy_stuck_past_its_hard_deadline(
    routed_hosts: tuple[str, ...], reverted: bool
) -> None:
    # The update reached the deadline, the drain timeout and the grace: cut over, but the
    # route still differs (a stop that keeps failing, or host names the router refuses).
    stuck = desired(
        hostnames=(*HOSTS, "www.example.com"),
        operation=operation(OperationKind.UPDATE_SERVICE, age_s=60 + 30 + 61),
    )
    observed = dataclasses.replace(route(("a1", READY)), hostnames=routed_hosts)
    actions = plan(stuck, Observed(NOW, (inst("a1"), inst("a2")), observed))
    assert len(actions) == 1 and isinstance(actions[0], FinishOperation)
    assert not actions[0].succeeded and "not done within 60 s" in actions[0].message
    assert actions[0].revert is reverted
