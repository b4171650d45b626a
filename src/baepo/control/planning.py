"""The reconciler's decision, as a pure function: `plan(desired, observed) -> list[Action]`.

One service at a time. `Desired` is what the database says (the revision that should serve,
how many instances, paused, being deleted, the operation in progress); `Observed` is what the
engine and the router say now (the service's labelled containers with the health the prober
found, the route and its servers' in-flight counts). The plan is the next step towards the
desired state; the loop applies it, observes again and plans again until nothing is left to do.

The zero-downtime order falls out of the rules, one pass at a time:

1. Exited instances are removed; one of the serving revision is replaced (a "crashed" event).
   A container the engine created but never started (a refused start) is removed and started
   again, without an event: it did not crash, and the deploy goes on until its deadline.
2. Missing instances of the serving revision are started (at least one while a deploy runs:
   the new revision passes its health check even if the service scales to zero).
3. Each instance of it that passed its health check is added to the route, next to the old ones.
4. Only once *all* of them are healthy and the route has them ready ("cutover", seen a pass
   after the one that added them) are the others (older revisions, surplus, unhealthy, or all
   of them when paused or deleting) set to drain; a drained server (no request in flight, or
   draining for `drain_timeout_s`) leaves the route and its instance is stopped. Instances
   that were never routed are stopped at cutover directly.
5. A deploying operation fails, with nothing else done in that pass, when an instance of the new
   revision exits before it was ever healthy or when the deadline passes before cutover; the
   operation's end puts the desired revision back and the next passes remove the new instances.
   Otherwise it succeeds in the first pass that has nothing left to do.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from baepo.control.operations import OperationKind
from baepo.router import Check, Route, Server, ServerState

DEPLOY_GRACE_S = 60.0
"""After a deploy's deadline, how long past the drain timeout it may take to converge once
its new revision is healthy before the operation is ended as FAILED anyway."""


class Health(StrEnum):
    STARTING = "starting"
    """Not yet `healthy_threshold` passing checks in a row."""
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    """Was healthy, then failed `unhealthy_threshold` checks in a row: to be replaced."""


@dataclass(frozen=True)
class DesiredOperation:
    id: str
    kind: OperationKind
    started_at: datetime
    deadline: datetime


@dataclass(frozen=True)
class Desired:
    service: str
    hostnames: tuple[str, ...]
    revision: int | None = None
    instances: int = 1
    max_concurrency: int = 100
    paused: bool = False
    deleting: bool = False
    operation: DesiredOperation | None = None
    drain_timeout_s: float = 30
    check: str = "health check"
    """How the serving revision is checked, for messages ("HTTP GET /healthz")."""
    checks: Mapping[int, Check] = field(default_factory=dict)
    """Revision → the health check the router runs on its routed instances. A route carries
    the check of the newest revision among its ready servers: old instances are never checked
    against a path only a new revision answers."""


@dataclass(frozen=True)
class ObservedInstance:
    id: str
    """The container id."""
    name: str
    """The instance id (`baepo.instance` label), also its server name in the route."""
    revision: int | None
    running: bool
    exit_code: int | None = None
    address: str | None = None
    health: Health = Health.STARTING
    started: bool = True
    """False for a container the engine created but never started (a failed start)."""
    error: str = ""
    """Why the engine says it is not running, when it says (Swarm: "node … is down")."""


@dataclass(frozen=True)
class Observed:
    now: datetime
    instances: tuple[ObservedInstance, ...] = ()
    route: Route | None = None
    in_flight: Mapping[str, int] = field(default_factory=dict)
    drain_started: Mapping[str, datetime] = field(default_factory=dict)
    start_error: str | None = None
    """The engine's words, when it refused to start the service's last instance."""
    routers_behind: int = 0
    """Other processes' routers not carrying the route as it is now (`RouteState`)."""


@dataclass(frozen=True)
class StartInstance:
    revision: int


@dataclass(frozen=True)
class StopInstance:
    instance: ObservedInstance
    reason: str


@dataclass(frozen=True)
class RemoveInstance:
    """Remove an exited container (its logs go with it)."""

    instance: ObservedInstance


@dataclass(frozen=True)
class SetRoute:
    route: Route
    changes: tuple[str, ...]
    """What differs from the observed route, in words, for the operation's log."""


@dataclass(frozen=True)
class RemoveRoute:
    pass


@dataclass(frozen=True)
class RecordEvent:
    kind: str
    instance: str
    message: str


@dataclass(frozen=True)
class FinishOperation:
    operation_id: str
    succeeded: bool
    message: str
    logs_from: tuple[ObservedInstance, ...] = ()
    """Instances whose last log lines explain a failure."""
    revert: bool = True
    """On failure, put the desired state back as it was before the operation."""


Action = (
    StartInstance
    | StopInstance
    | RemoveInstance
    | SetRoute
    | RemoveRoute
    | RecordEvent
    | FinishOperation
)


def plan(desired: Desired, observed: Observed) -> list[Action]:
    """The next actions that move `observed` towards `desired` (empty: converged)."""
    op = desired.operation
    serving = None if desired.paused or desired.deleting else desired.revision
    want = desired.instances if serving is not None else 0
    if serving is not None and op is not None and op.kind.deploys:
        # A deploy proves its revision healthy, also for a service that scales to zero: one
        # instance at least, which the autoscaler lets go once idle (Knative's initial scale).
        want = max(want, 1)
    dead = sorted((i for i in observed.instances if not i.running), key=_by_name)
    live = sorted((i for i in observed.instances if i.running), key=_by_name)

    target = [i for i in live if serving is not None and i.revision == serving]
    others = [i for i in live if i not in target]
    others += [i for i in target if i.health is Health.UNHEALTHY]
    target = [i for i in target if i.health is not Health.UNHEALTHY]
    if len(target) > want:  # surplus: retire the ones still starting first
        target.sort(key=lambda i: (i.health is not Health.HEALTHY, i.name), reverse=True)
        others += target[: len(target) - want]
        target = sorted(target[len(target) - want :], key=_by_name)
    ready = [i for i in target if i.health is Health.HEALTHY and i.address]
    routed = [i for i in ready if _serving(observed.route, i.name)]
    cutover = len(routed) >= want

    if op is not None and op.kind.deploys and not cutover:
        failure = _deploy_failure(desired, observed, serving, target, dead)
        if failure is not None:
            return [failure]

    actions: list[Action] = []
    for instance in dead:
        actions.append(RemoveInstance(instance))
        if serving is not None and instance.revision == serving and instance.started:
            if instance.exit_code is None:  # no exit: removed outside Baepo, or lost
                how = f"is lost: {instance.error}" if instance.error else "was removed"
                event = RecordEvent(
                    "removed",
                    instance.name,
                    f"instance {instance.name} (revision {serving}) {how}; replacing it",
                )
            else:
                event = RecordEvent(
                    "crashed",
                    instance.name,
                    f"instance {instance.name} (revision {serving}) exited with code "
                    f"{instance.exit_code}; replacing it",
                )
            actions.append(event)
    actions += [StartInstance(serving) for _ in range(want - len(target)) if serving is not None]

    servers, stops = _servers(desired, observed, ready, others, cutover)
    route = observed.route
    if desired.deleting and not live:
        if route is not None:
            actions.append(RemoveRoute())
    elif route is None and (desired.deleting or not servers):
        # Nothing to route to yet (a first deploy not ready, or failed: a missing image) or a
        # service going away: no route, so no router reload for it (1000 failed creates made
        # 1000 reloads).
        pass
    else:
        actions += _gone_events(desired, observed, serving)
        paused = desired.paused or (
            route is not None and route.paused and not (cutover and want > 0)
        )
        if desired.deleting and route is not None:
            paused = route.paused
        wanted = Route(
            name=desired.service,
            hostnames=desired.hostnames,
            servers=tuple(sorted(servers, key=lambda s: s.name)),
            max_concurrency=desired.max_concurrency,
            paused=paused,
            check=_route_check(desired, observed, servers, serving),
        )
        if route is None or not _same_route(route, wanted):
            actions.append(SetRoute(wanted, _describe_changes(route, wanted)))
    actions += stops

    if op is not None and not actions:
        if (
            op.kind.deploys
            and cutover
            and not others
            and serving is not None
            and not observed.routers_behind
        ):
            return [FinishOperation(op.id, True, f"revision {serving} serves")]
        if op.kind is OperationKind.PAUSE_SERVICE and not live:
            return [FinishOperation(op.id, True, "paused: no instance runs")]
        if op.kind is OperationKind.DELETE_SERVICE and not observed.instances and route is None:
            return [FinishOperation(op.id, True, "deleted")]
    if op is not None and observed.now >= _hard_deadline(desired, op):
        # Stuck past the point a deploy can be undone (the router or the engine keep failing):
        # end the operation but keep converging to what it asked for. Unless the router never
        # took the host names it asked for (a domain it refuses): then nothing moved, and what
        # stays asked for would wedge every later operation; put it back.
        never_routed = route is None or set(route.hostnames) != set(desired.hostnames)
        return [
            FinishOperation(
                op.id,
                False,
                f"not done within {_span(op)}: {_pending(actions, observed.routers_behind)}",
                revert=op.kind.deploys and never_routed,
            )
        ]
    return actions


def _hard_deadline(desired: Desired, op: DesiredOperation) -> datetime:
    if not op.kind.deploys:
        return op.deadline
    return op.deadline + timedelta(seconds=desired.drain_timeout_s + DEPLOY_GRACE_S)


def _pending(actions: list[Action], routers_behind: int) -> str:
    kinds = sorted({type(a).__name__ for a in actions})
    if kinds:
        return "still to do: " + ", ".join(kinds)
    if routers_behind:
        return f"waiting for {routers_behind} other router(s) to carry the route"
    return "waiting"


def _deploy_failure(
    desired: Desired,
    observed: Observed,
    serving: int | None,
    target: list[ObservedInstance],
    dead: list[ObservedInstance],
) -> FinishOperation | None:
    assert desired.operation is not None
    op = desired.operation
    crashed = [
        i for i in dead if i.revision == serving and i.health is not Health.HEALTHY and i.started
    ]
    if crashed:
        first = crashed[0]
        return FinishOperation(
            op.id,
            False,
            f"instance {first.name} of revision {serving} exited with code {first.exit_code} "
            "before passing its health check",
            logs_from=tuple(crashed + target),
        )
    if observed.now >= op.deadline:
        message = f"revision {serving} did not pass its {desired.check} within {_span(op)}"
        if observed.start_error:
            message += f"; the engine refused to start it: {observed.start_error}"
        return FinishOperation(op.id, False, message, logs_from=tuple(target))
    return None


def _servers(
    desired: Desired,
    observed: Observed,
    ready: list[ObservedInstance],
    others: list[ObservedInstance],
    cutover: bool,
) -> tuple[list[Server], list[Action]]:
    """The route's servers and the instances to stop after the route changed."""
    route = observed.route
    servers = [Server(i.name, i.address or "", ServerState.READY) for i in ready]
    stops: list[Action] = []
    for instance in others:
        current = route.server(instance.name) if route is not None else None
        reason = _retire_reason(desired, instance)
        if current is None:
            if cutover:
                stops.append(StopInstance(instance, reason))
        elif not cutover:
            servers.append(current)
        elif current.state is ServerState.READY:
            servers.append(dataclasses.replace(current, state=ServerState.DRAIN))
        elif _drained(desired, observed, instance.name):
            stops.append(StopInstance(instance, reason))
        else:
            servers.append(current)
    return servers, stops


def _serving(route: Route | None, name: str) -> bool:
    server = route.server(name) if route is not None else None
    return server is not None and server.state is ServerState.READY


def _drained(desired: Desired, observed: Observed, name: str) -> bool:
    if observed.in_flight.get(name, 0) <= 0:
        return True
    started = observed.drain_started.get(name)
    if started is None:
        return False
    return (observed.now - started).total_seconds() >= desired.drain_timeout_s


def _retire_reason(desired: Desired, instance: ObservedInstance) -> str:
    if desired.deleting:
        return "the service is being deleted"
    if desired.paused:
        return "the service is paused"
    if instance.health is Health.UNHEALTHY:
        return "it failed its health checks"
    if instance.revision == desired.revision:
        return "more instances run than wanted"
    return f"revision {desired.revision} replaces revision {instance.revision}"


def _gone_events(desired: Desired, observed: Observed, serving: int | None) -> list[Action]:
    """An event for each routed server whose container vanished (removed behind our back)."""
    if observed.route is None or serving is None:
        return []
    known = {i.name for i in observed.instances}
    return [
        RecordEvent("removed", s.name, f"instance {s.name} disappeared; replacing it")
        for s in observed.route.servers
        if s.name not in known and s.state is ServerState.READY
    ]


def _route_check(
    desired: Desired, observed: Observed, servers: list[Server], serving: int | None
) -> Check | None:
    ready = {s.name for s in servers if s.state is ServerState.READY}
    revisions = [
        i.revision for i in observed.instances if i.name in ready and i.revision is not None
    ]
    revision = max(revisions) if revisions else serving
    return desired.checks.get(revision) if revision is not None else None


def _same_route(a: Route, b: Route) -> bool:
    return (
        a.check == b.check
        and set(a.hostnames) == set(b.hostnames)
        and set(a.servers) == set(b.servers)
        and a.max_concurrency == b.max_concurrency
        and a.paused == b.paused
    )


def _describe_changes(before: Route | None, after: Route) -> tuple[str, ...]:
    if before is None:
        return (f"route {', '.join(after.hostnames)} created",)
    lines: list[str] = []
    old = {s.name: s for s in before.servers}
    new = {s.name: s for s in after.servers}
    for name, server in new.items():
        if name not in old:
            lines.append(f"routing requests to {name} ({server.address})")
        elif old[name].state != server.state:
            verb = "draining" if server.state is ServerState.DRAIN else f"{server.state} for"
            lines.append(f"{verb} {name}")
    lines += [f"{name} left the route" for name in old if name not in new]
    if before.check != after.check and after.check is not None:
        how = f"HTTP GET {after.check.path}" if after.check.path else "TCP connect"
        lines.append(f"the router checks the instances ({how} every {after.check.interval_s} s)")
    if set(before.hostnames) != set(after.hostnames):
        lines.append(f"host names now {', '.join(after.hostnames)}")
    if before.max_concurrency != after.max_concurrency:
        lines.append(f"max concurrency now {after.max_concurrency}")
    if before.paused != after.paused:
        lines.append("answering with the paused page" if after.paused else "paused page off")
    return tuple(lines)


def _span(op: DesiredOperation) -> str:
    return f"{(op.deadline - op.started_at).total_seconds():g} s"


def _by_name(instance: ObservedInstance) -> str:
    return instance.name
