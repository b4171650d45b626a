"""Autoscaling in the control loop: an `Autoscaler` per service, fed what the router observes,
asked at each reconcile pass how many instances the service wants.

Whoever watches the router (a sampler reading HAProxy's stats once a second) calls `observe`
with a service's requests in flight, queued and arrived since the last reading; the reconciler
calls `want` with the service's bounds and its ready instances. A change of the wanted count
comes back with the autoscaler's reason ("in flight 340 over 3 instances x 70 → 5"), which the
reconciler records as the service's event.

A service never observed (no sampler runs) wants its `min_instances`, as before autoscaling;
with `min_instances` 0 it keeps what runs instead (after a restart of Baepo, the instances of a
service scaled to zero or not are never stopped for want of a first observation). One whose
observations stopped (the router is down) keeps what it has, within its bounds.

Scale from zero: the router's activator holds the requests of a service with no ready instance
and calls `demand` (through Baepo's internal endpoint, about once a second while requests
wait). A demand counts as activity and makes the very next `want` decide, without waiting out
the once-a-second spacing of decisions: it wants at least one instance at once. However many
requests wait, the count is one until the sampler's observations say more.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

from baepo.clock import Clock
from baepo.control.autoscaling import Autoscaler, AutoScalingConfiguration


@dataclass(frozen=True)
class Wanted:
    instances: int
    reason: str | None
    """Set when the count changed since the last `want` (the event to record), else None."""


@dataclass(frozen=True)
class Bounds:
    min_instances: int
    max_instances: int
    max_concurrency: int

    def configuration(self) -> AutoScalingConfiguration:
        return AutoScalingConfiguration(
            min_size=self.min_instances,
            max_size=self.max_instances,
            max_concurrency=self.max_concurrency,
        )


DECIDE_EVERY_S = 1.0  # the autoscaler's steps (halving, panic, delay) are per decision
WAITING_S = 2.0
"""A service has requests waiting for this long after a demand or an observation beyond its
instances (the activator repeats its demand, and the sampler observes, every second)."""


class Scaling:
    """Safe from any thread: the sampler observes from one, the reconciler asks from another."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._scalers: dict[str, tuple[Bounds, Autoscaler]] = {}
        self._decided: dict[str, tuple[float, int]] = {}  # when, and how many
        self._observed: set[str] = set()
        self._demanded: dict[str, float] = {}  # service → its last demand (monotonic)
        self._pressed: dict[str, float] = {}  # service → when it last outgrew its instances

    def observe(self, service: str, in_flight: int, queued: int, arrived: int = 0) -> bool:
        """Record what the router saw. True when the requests outgrow the instances last
        decided (more than their target share, below max_instances): a scale-up is due, and
        the caller should wake the reconciler instead of leaving it to the next pass."""
        now = self._clock.monotonic()
        with self._lock:
            entry = self._scalers.get(service)
            if entry is None:
                return False
            bounds, scaler = entry
            scaler.observe(now, in_flight, queued, arrived)
            self._observed.add(service)
            last = self._decided.get(service)
            if last is None or last[1] >= bounds.max_instances:
                return False
            if in_flight + queued <= last[1] * scaler.configuration.target:
                return False
            self._pressed[service] = now
            return True

    def demand(self, service: str) -> None:
        """Requests of `service` wait for an instance (the activator holds them at zero): the
        next `want` decides at once and wants at least one."""
        now = self._clock.monotonic()
        with self._lock:
            self._demanded[service] = now
            self._observed.add(service)
            entry = self._scalers.get(service)
            if entry is not None:
                entry[1].waiting(now)
            last = self._decided.get(service)
            if last is not None:
                self._decided[service] = (float("-inf"), last[1])

    def waiting(self, service: str) -> bool:
        """Whether requests of `service` wait for more instances: held at zero by the activator
        (a demand in the last seconds) or beyond what its instances carry (an observation in
        the last seconds). A new instance is then probed in a hurry."""
        now = self._clock.monotonic()
        with self._lock:
            times = (self._demanded.get(service), self._pressed.get(service))
        return any(when is not None and now - when < WAITING_S for when in times)

    def want(self, service: str, bounds: Bounds, ready: int) -> Wanted:
        """How many instances `service` wants, with `ready` instances serving now. Decided at
        most once a second; between decisions the last answer stands."""
        now = self._clock.monotonic()
        with self._lock:
            entry = self._scalers.get(service)
            if entry is None:
                entry = (bounds, Autoscaler(bounds.configuration()))
                if service in self._demanded:  # demanded before the reconciler asked
                    entry[1].waiting(self._demanded[service])
            elif entry[0] != bounds:
                entry[1].configuration = bounds.configuration()  # the history is kept
                entry = (bounds, entry[1])
            self._scalers[service] = entry
            if service not in self._observed:
                count = bounds.min_instances or min(ready, bounds.max_instances)
                self._decided[service] = (float("-inf"), count)
                return Wanted(count, None)
            last = self._decided.get(service)
            if last is not None and now - last[0] < DECIDE_EVERY_S:
                count = min(max(last[1], bounds.min_instances), bounds.max_instances)
                return Wanted(count, None)
            decision = entry[1].decide(now, ready)
            self._decided[service] = (now, decision.desired)
        before = last[1] if last is not None else None
        changed = before is not None and decision.desired != before
        return Wanted(decision.desired, decision.reason if changed else None)

    def forget_all_but(self, services: Iterable[str]) -> None:
        """Drop the autoscalers of services that are gone."""
        keep = set(services)
        with self._lock:
            for name in set(self._scalers) - keep:
                del self._scalers[name]
                self._decided.pop(name, None)
                self._observed.discard(name)
            for name in set(self._demanded) - keep:
                del self._demanded[name]
            for name in set(self._pressed) - keep:
                del self._pressed[name]
            self._observed &= keep  # demands name services too: only live ones are kept
