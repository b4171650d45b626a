"""`MemoryRouter`: the router room's `Router` in memory, for unit tests of other rooms.

It keeps every route it was given (`routes`, and each put in order in `history`), so a test
can check what traffic could reach at each step. A test plays the traffic by writing
`in_flight` (service → server → requests it serves now) and the outage by setting
`available` to False. Health checks: a server at an address in `unreachable` (or named in
`down`, service → server → the check's words) is down, any other up. Like the
real data plane it refuses a route with a host name another route has; it passes the same
conformance suite as `HAProxyRouter` (`tests/router/test_conformance.py`).
"""

from __future__ import annotations

import threading

from baepo.router import (
    HAProxyUnavailable,
    InvalidRoute,
    Route,
    RouteState,
    ServerHealth,
    ServerState,
)


class MemoryRouter:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.in_flight: dict[str, dict[str, int]] = {}
        self.history: list[Route] = []
        self.available = True
        self.unreachable: set[str] = set()
        self.down: dict[str, dict[str, str]] = {}
        self.reads = 0  # how many times the reconciler looked (get, or states)
        # The reconciler puts routes from worker threads, one per service.
        self._lock = threading.Lock()

    def get(self, service: str) -> RouteState | None:
        with self._lock:
            self._check()
            self.reads += 1
            route = self.routes.get(service)
            return None if route is None else self._state(route)

    def states(self) -> dict[str, RouteState]:
        with self._lock:
            self._check()
            self.reads += 1
            return {name: self._state(route) for name, route in self.routes.items()}

    def _state(self, route: Route) -> RouteState:
        load = self.in_flight.get(route.name, {})
        health = {}
        if route.check is not None:
            down = self.down.get(route.name, {})
            for s in route.servers:
                if s.state is ServerState.MAINT:
                    continue
                if s.address in self.unreachable:
                    health[s.name] = ServerHealth(False, "Layer4 connection problem")
                elif s.name in down:
                    health[s.name] = ServerHealth(False, down[s.name])
                else:
                    health[s.name] = ServerHealth(True, "check passed")
        return RouteState(route, {s.name: load.get(s.name, 0) for s in route.servers}, health)

    def put(self, route: Route) -> None:
        with self._lock:
            self._check()
            for other in self.routes.values():
                clash = set(other.hostnames) & set(route.hostnames)
                if other.name != route.name and clash:
                    raise InvalidRoute(f"hostname {clash.pop()!r} is claimed by {other.name!r}")
            self.routes[route.name] = route
            self.history.append(route)

    def remove(self, service: str) -> None:
        with self._lock:
            self._check()
            self.routes.pop(service, None)

    def ready(self, service: str) -> set[str]:
        """The names of the service's servers that take new requests."""
        route = self.routes.get(service)
        if route is None:
            return set()
        return {s.name for s in route.servers if s.state is ServerState.READY}

    def _check(self) -> None:
        if not self.available:
            raise HAProxyUnavailable("the memory router was made unavailable by the test")
