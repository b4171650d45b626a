"""What a reconcile pass observes about a service's instances: their health and their drains.

Each container of the service becomes an `ObservedInstance` for the planner, with its health
(`health.py` keeps it across passes):

- a routed instance is judged by the router's checks (HAProxy `check` with its revision's
  health check): one the router finds down is UNHEALTHY, recorded as the service's event;
- a starting one is probed by Baepo itself (the deploy gate), every `Timing.poll_s`; each
  change in what the probe answers is a line of the operation's log ("GET /healthz answered
  HTTP 404") and the operation's message says where the start stands (`Journal.progress`);
- a new instance whose requests wait at zero (the router's activator holds them) is probed in
  a hurry by a task of its own (`hurry`, `health.probe_until_healthy`), which wakes the loop
  the moment it passes: the held requests wait for the app's start, not for the next pass.

It also tells the planner since when each server of the route drains (`drains`), and which
check the router should run for each revision (`checks`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import datetime

from baepo.clock import Clock
from baepo.control import instances
from baepo.control.health import HURRY_EVERY_S, HealthTracker, probe_until_healthy, router_check
from baepo.control.instances import Revision
from baepo.control.journal import Journal
from baepo.control.planning import Health, ObservedInstance
from baepo.control.probes import Prober, ProbeResult
from baepo.control.service_state import ServiceState, StateReader
from baepo.router import Check, Route, RouteState, ServerState
from baepo.runtime import LABEL_INSTANCE, Instance

HURRY_S = 60.0
"""How long a new instance of a service whose requests wait (at zero, or queued beyond its
instances) is probed in a hurry (the router's activator holds a request this long by
default)."""


class Observer:
    """Observes instances for the reconciler's passes. Used from the event loop only."""

    def __init__(
        self,
        *,
        health: HealthTracker,
        prober: Prober,
        clock: Clock,
        states: StateReader,
        journal: Journal,
        wake: Callable[[], None],
    ) -> None:
        self._health = health
        self._prober = prober
        self._clock = clock
        self._states = states
        self._journal = journal
        self._wake = wake
        self._probe_lines: dict[str, str] = {}  # container → the last probe detail logged
        self._drain_started: dict[tuple[str, str], datetime] = {}
        self._hurries: set[asyncio.Task[None]] = set()  # probes of instances requests wait for

    async def observe(
        self,
        state: ServiceState,
        containers: list[Instance],
        route_state: RouteState | None,
        stopping: Collection[str],
    ) -> list[ObservedInstance]:
        """Each container with its health: from the router's checks once it is routed, from
        Baepo's own probes while it starts (the deploy gate). `stopping`: the containers
        being stopped, which count as running until they are gone (their exit is no crash)."""
        route = route_state.route if route_state else None
        verdicts = route_state.health if route_state else {}
        checks: list[tuple[Instance, str, Revision]] = []
        for c in containers:
            name = c.labels[LABEL_INSTANCE]
            server = route.server(name) if route else None
            routed = server is not None and server.state is ServerState.READY
            self._health.adopt(c.id, routed)
            number = instances.revision_label(c)
            if number is None:
                continue
            verdict = verdicts.get(name) if routed else None
            if verdict is not None:
                rev = await self._states.known_revision(state.service_id, number)
                if rev is None:
                    continue
                check = rev.spec.health_check
                change = self._health.router_verdict(c.id, name, check, verdict.up, verdict.detail)
                if change is not None:
                    await self._journal.event(state, "unhealthy", name, change.message)
            elif c.running and c.address and self._health.due(c.id):
                rev = await self._states.known_revision(state.service_id, number)
                if rev is not None:
                    checks.append((c, c.address, rev))
        results = await asyncio.gather(*(self._probe(address, rev) for _, address, rev in checks))
        for (c, _, rev), result in zip(checks, results, strict=True):
            name = c.labels[LABEL_INSTANCE]
            check = rev.spec.health_check
            change = self._health.record(c.id, name, check, result)
            if change is None:
                if self._health.health(c.id) is Health.STARTING:
                    await self._waiting_for(state, c.id, name, check.healthy_threshold, result)
                continue
            await self._journal.note(state, change.message)
        return [
            ObservedInstance(
                id=c.id,
                name=c.labels[LABEL_INSTANCE],
                revision=instances.revision_label(c),
                running=c.running or c.id in stopping,
                exit_code=c.exit_code,
                address=c.address if c.running else None,
                health=self._health.health(c.id) or Health.STARTING,
                started=c.running or c.started_at is not None,
                error="" if c.running else c.error,
            )
            for c in containers
        ]

    async def checks(
        self, state: ServiceState, observed: list[ObservedInstance]
    ) -> dict[int, Check]:
        """Revision → the check the router runs, for the revisions that run or should."""
        numbers = {i.revision for i in observed if i.revision is not None}
        if state.desired.revision is not None:
            numbers.add(state.desired.revision)
        checks = {}
        for number in numbers:
            revision = await self._states.known_revision(state.service_id, number)
            if revision is not None:
                checks[number] = router_check(revision.spec.health_check)
        return checks

    def drains(
        self, service: str, route_state: RouteState | None, now: datetime
    ) -> Mapping[str, datetime]:
        """Since when each server of the service's route that is not READY drains."""
        draining = set()
        if route_state is not None:
            draining = {
                s.name for s in route_state.route.servers if s.state is not ServerState.READY
            }
        for key in [k for k in self._drain_started if k[0] == service and k[1] not in draining]:
            del self._drain_started[key]
        for name in draining:
            self._drain_started.setdefault((service, name), now)
        return {name: self._drain_started[(service, name)] for name in draining}

    def routed(self, service: str, route: Route) -> None:
        """The service's route was put: its servers that are not READY drain from now on."""
        now = self._clock.now()
        for server in route.servers:
            if server.state is not ServerState.READY:
                self._drain_started.setdefault((service, server.name), now)

    def hurry(
        self, state: ServiceState, instance: tuple[str, str, str], revision: Revision
    ) -> None:
        """Requests wait at zero for this instance (container id, name, address): probe it
        until healthy, then pass at once."""

        async def hurry() -> None:
            change = await probe_until_healthy(
                self._health,
                self._prober,
                self._clock.sleep,
                instance,
                revision.spec.health_check,
                give_up_after=int(HURRY_S / HURRY_EVERY_S),
            )
            if change is not None:
                self._wake()
                await self._journal.note(state, change.message)

        task = asyncio.create_task(hurry(), name=f"hurry {instance[1]}")
        self._hurries.add(task)
        task.add_done_callback(self._hurries.discard)

    def forget_all_but(self, container_ids: Iterable[str]) -> None:
        """Forget the health of the containers no listing shows any more."""
        keep = set(container_ids)
        self._health.forget_all_but(keep)
        for gone in set(self._probe_lines) - keep:
            del self._probe_lines[gone]

    def cancel(self) -> None:
        """Stop the probes in a hurry (the loop is ending)."""
        for task in list(self._hurries):
            task.cancel()

    async def _waiting_for(
        self,
        state: ServiceState,
        container_id: str,
        name: str,
        needed: int,
        result: ProbeResult,
    ) -> None:
        """Tell the operation what the probe of a starting instance answered."""
        if state.operation_id is None:
            return
        if not result.ok and self._probe_lines.get(container_id) != result.detail:
            self._probe_lines[container_id] = result.detail
            await self._journal.note(state, f"{name}: health check: {result.detail}")
        passing, failing = self._health.streak(container_id)
        message = f"waiting for {name}: {result.detail}, {passing} of {needed} passing" + (
            f" ({failing} failed in a row)" if failing else ""
        )
        await self._journal.progress(state.operation_id, message)

    async def _probe(self, address: str, revision: Revision) -> ProbeResult:
        check = revision.spec.health_check
        try:
            return await self._prober.probe(address, check)
        except Exception as exc:  # a prober must not raise; if it does, the check failed
            return ProbeResult(False, f"probe error: {exc}")
