"""Autoscaling in the control loop: an `Autoscaler` per service, fed what the router observes,
asked at each reconcile pass how many instances the service wants.

Whoever watches the router (a sampler reading HAProxy's stats once a second) calls `observe`
with a service's requests in flight, queued and arrived since the last reading; the reconciler
calls `want` with the service's bounds and its ready instances. A change of the wanted count
comes back with the autoscaler's reason ("in flight 340 over 3 instances x 70 → 5"), which the
reconciler records as the service's event.

A service never observed (no sampler runs) wants its `min_instances`, as before autoscaling; one
whose observations stopped (the router is down) keeps what it has, within its bounds.
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


class Scaling:
    """Safe from any thread: the sampler observes from one, the reconciler asks from another."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._scalers: dict[str, tuple[Bounds, Autoscaler]] = {}
        self._decided: dict[str, tuple[float, int]] = {}  # when, and how many
        self._observed: set[str] = set()

    def observe(self, service: str, in_flight: int, queued: int, arrived: int = 0) -> None:
        with self._lock:
            entry = self._scalers.get(service)
            if entry is not None:
                entry[1].observe(self._clock.monotonic(), in_flight, queued, arrived)
                self._observed.add(service)

    def want(self, service: str, bounds: Bounds, ready: int) -> Wanted:
        """How many instances `service` wants, with `ready` instances serving now. Decided at
        most once a second; between decisions the last answer stands."""
        now = self._clock.monotonic()
        with self._lock:
            entry = self._scalers.get(service)
            if entry is None:
                entry = (bounds, Autoscaler(bounds.configuration()))
            elif entry[0] != bounds:
                entry[1].configuration = bounds.configuration()  # the history is kept
                entry = (bounds, entry[1])
            self._scalers[service] = entry
            if service not in self._observed:
                self._decided[service] = (float("-inf"), bounds.min_instances)
                return Wanted(bounds.min_instances, None)
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
