"""Instance health as the reconciler has seen it: App Runner's thresholds over check results.

An instance starts STARTING and becomes HEALTHY after `healthy_threshold` passing probes in a
row: Baepo's own probes (`probes.py`), every `poll_s`, are the deploy gate. Once routed, an
instance is checked by the router (HAProxy's `check`, every `interval_s` of its check, down
after `unhealthy_threshold` failures in a row), not from Python: at 1,000 services, probes
from Python cost a core doing nothing. The reconciler reads the router's verdicts once a pass
(`router_verdict`): a HEALTHY instance the router finds down becomes UNHEALTHY and is replaced
(it never comes back: its replacement does). A HEALTHY instance that is not routed (it is
being added, or drained) is probed no more: it is either routed at the next pass or leaving.

A service whose requests wait at zero (the activator holds them) cannot wait for the next pass:
`probe_until_healthy` probes its new instance every few milliseconds instead, so the request
is served as soon as the app answers (a cold start costs the container's own start, not a
pass interval on top).

Health lives in memory only, the leader's. After a restart of Baepo an instance the route
already sends requests to is taken as HEALTHY (it passed before, and the next probes will tell
otherwise), any other as STARTING. Another process sharing the database describes instances by
the same rule, from the routes its router carries (`Reconciler.routed_health`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from baepo.control.planning import Health
from baepo.control.probes import Prober, ProbeResult, request_target
from baepo.control.spec import HealthCheck
from baepo.control.spec import Protocol as CheckProtocol
from baepo.router import Check


@dataclass
class Tracked:
    health: Health
    successes: int = 0
    failures: int = 0
    next_probe: float = 0.0
    detail: str = ""


@dataclass(frozen=True)
class Transition:
    """A change of health worth telling a person about."""

    container_id: str
    health: Health
    message: str


class HealthTracker:
    def __init__(self, monotonic: Callable[[], float], poll_s: float) -> None:
        self._monotonic = monotonic
        self._poll_s = poll_s
        self._tracked: dict[str, Tracked] = {}

    def health(self, container_id: str) -> Health | None:
        tracked = self._tracked.get(container_id)
        return tracked.health if tracked else None

    def detail(self, container_id: str) -> str:
        tracked = self._tracked.get(container_id)
        return tracked.detail if tracked else ""

    def streak(self, container_id: str) -> tuple[int, int]:
        """(passing, failing) checks in a row, as recorded so far."""
        tracked = self._tracked.get(container_id)
        return (tracked.successes, tracked.failures) if tracked else (0, 0)

    def adopt(self, container_id: str, routed: bool) -> Health:
        """Start tracking `container_id` if new (HEALTHY if the route already uses it)."""
        tracked = self._tracked.get(container_id)
        if tracked is None:
            tracked = Tracked(Health.HEALTHY if routed else Health.STARTING)
            self._tracked[container_id] = tracked
        return tracked.health

    def due(self, container_id: str) -> bool:
        """Whether a starting instance waits for Baepo's next probe."""
        tracked = self._tracked.get(container_id)
        return (
            tracked is not None
            and tracked.health is Health.STARTING
            and self._monotonic() >= tracked.next_probe
        )

    def router_verdict(
        self, container_id: str, name: str, check: HealthCheck, up: bool, detail: str
    ) -> Transition | None:
        """What the router's checks say of a routed instance: down makes a HEALTHY one
        UNHEALTHY (the router gave up after `unhealthy_threshold` failures in a row)."""
        tracked = self._tracked.get(container_id)
        if tracked is None or tracked.health is not Health.HEALTHY:
            return None
        tracked.detail = detail
        if up:
            return None
        tracked.health = Health.UNHEALTHY
        return Transition(
            container_id,
            Health.UNHEALTHY,
            f"instance {name} failed {check.unhealthy_threshold} health checks in a row "
            f"({check.describe()}: {detail}); replacing it",
        )

    def record(
        self, container_id: str, name: str, check: HealthCheck, result: ProbeResult
    ) -> Transition | None:
        tracked = self._tracked.get(container_id)
        if tracked is None:
            return None
        tracked.detail = result.detail
        starting = tracked.health is Health.STARTING
        tracked.next_probe = self._monotonic() + (self._poll_s if starting else check.interval_s)
        if result.ok:
            tracked.successes += 1
            tracked.failures = 0
            if starting and tracked.successes >= check.healthy_threshold:
                tracked.health = Health.HEALTHY
                return Transition(
                    container_id,
                    Health.HEALTHY,
                    f"instance {name} passed its health check ({result.detail})",
                )
            return None
        tracked.failures += 1
        tracked.successes = 0
        return None

    def forget_all_but(self, container_ids: Iterable[str]) -> None:
        keep = set(container_ids)
        for gone in set(self._tracked) - keep:
            del self._tracked[gone]

    def forget(self, container_id: str) -> None:
        self._tracked.pop(container_id, None)


def router_check(check: HealthCheck) -> Check:
    """The router's form of a revision's health check (the path as it goes on the wire)."""
    path = request_target(check.path) if check.protocol is CheckProtocol.HTTP else None
    return Check(
        path=path,
        interval_s=check.interval_s,
        timeout_s=check.timeout_s,
        rise=check.healthy_threshold,
        fall=check.unhealthy_threshold,
    )


HURRY_EVERY_S = 0.02
"""How often `probe_until_healthy` probes (a refused connection costs microseconds)."""


async def probe_until_healthy(
    tracker: HealthTracker,
    prober: Prober,
    sleep: Callable[[float], Awaitable[None]],
    instance: tuple[str, str, str],
    check: HealthCheck,
    give_up_after: int,
) -> Transition | None:
    """Probe `instance` (container id, name, address) every `HURRY_EVERY_S` until it passes
    its check (the transition to HEALTHY), is no longer tracked, or `give_up_after` probes
    were made (None: the reconciler's own probes carry on)."""
    container_id, name, address = instance
    for _ in range(give_up_after):
        if tracker.health(container_id) is not Health.STARTING:
            return None
        try:
            result = await prober.probe(address, check)
        except Exception as exc:  # a prober must not raise; if it does, the check failed
            result = ProbeResult(False, f"probe error: {exc}")
        change = tracker.record(container_id, name, check, result)
        if change is not None:
            return change
        await sleep(HURRY_EVERY_S)
    return None
