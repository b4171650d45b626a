"""What the control room needs from the data plane: `Routes`, one service's route at a time.

The reconciler reads a service's route (its servers, their states and how many requests each
has in flight) and writes the whole route it wants; the router finds the difference (add a
server, set one to drain, delete one, flip the paused page) and applies it without dropping a
request. Routes are `baepo.router.table.Service` values, so the router room's own `Router`
maps onto this with a thin adapter in the composition root.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from baepo.router.interface import Router
from baepo.router.table import Service as Route


@dataclass(frozen=True)
class RouteState:
    route: Route
    in_flight: Mapping[str, int] = field(default_factory=dict)
    """Server name → requests it is serving now (HAProxy's `scur`)."""


class Routes(Protocol):
    """Blocking calls (the reconciler runs them in a worker thread); raise `RouterError`s."""

    def get(self, service: str) -> RouteState | None:
        """The service's route as the data plane has it now, or None if it has none."""
        ...

    def put(self, route: Route) -> None:
        """Make the service's route exactly `route` (hostnames, servers and states, paused)."""
        ...

    def remove(self, service: str) -> None:
        """Drop the service's route; its host names answer 404. No-op if it has none."""
        ...


class RouterRoutes:
    """`Routes` over the router room's `Router`: one service's slice of the routing table."""

    def __init__(self, router: Router) -> None:
        self._router = router
        # The reconciler converges services concurrently; each put is a read-modify-write of
        # the one routing table, so they take turns (otherwise the last writer wins).
        self._lock = threading.Lock()

    def get(self, service: str) -> RouteState | None:
        route = self._router.table().service(service)
        if route is None:
            return None
        stats = self._router.server_stats(service)
        return RouteState(route, {s.name: s.in_flight for s in stats})

    def put(self, route: Route) -> None:
        with self._lock:
            table = self._router.table()
            if table.service(route.name) != route:
                self._router.apply(table.with_service(route))

    def remove(self, service: str) -> None:
        with self._lock:
            self._router.remove_service(service)
