"""`MemoryRouter`: the router room's `Router` in memory, for unit tests of other rooms.

It keeps every route it was given (`routes`, and each put in order in `history`), so a test
can check what traffic could reach at each step. A test plays the traffic by writing
`in_flight` (service → server → requests it serves now) and the outage by setting
`available` to False. Like the real data plane it refuses a route with a host name another
route has; it passes the same conformance suite as `HAProxyRouter`
(`tests/router/test_conformance.py`).
"""

from __future__ import annotations

import threading

from baepo.router import HAProxyUnavailable, InvalidRoute, Route, RouteState, ServerState


class MemoryRouter:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.in_flight: dict[str, dict[str, int]] = {}
        self.history: list[Route] = []
        self.available = True
        # The reconciler puts routes from worker threads, one per service.
        self._lock = threading.Lock()

    def get(self, service: str) -> RouteState | None:
        with self._lock:
            self._check()
            route = self.routes.get(service)
            if route is None:
                return None
            load = self.in_flight.get(service, {})
            return RouteState(route, {s.name: load.get(s.name, 0) for s in route.servers})

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
