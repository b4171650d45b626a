"""Fakes for the control room's unit tests: a data plane in memory and a prober that is told.

`MemoryRoutes` stands in for the router room's `Router` (through the control room's `Routes`
interface) and keeps every route it was given, so a test can check what traffic could reach
at each step; like the router, it refuses a route with a host name another route has.
`MemoryPushLog` stands in for the registry's durable push log that auto-deploy follows.
`FakeProber` answers health checks from the engine's view of the instance: an instance is
healthy unless its image or its id was marked sick.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from baepo.control import HealthCheck, ProbeResult, RouteState
from baepo.router.errors import HAProxyUnavailable, InvalidRoute
from baepo.router.table import ServerState
from baepo.router.table import Service as Route
from baepo.runtime import Instance
from tests.fakes.engine import MemoryEngine


class MemoryRoutes:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.in_flight: dict[str, dict[str, int]] = {}
        self.history: list[Route] = []
        self.available = True

    def get(self, service: str) -> RouteState | None:
        self._check()
        route = self.routes.get(service)
        if route is None:
            return None
        return RouteState(route, dict(self.in_flight.get(service, {})))

    def put(self, route: Route) -> None:
        self._check()
        for other in self.routes.values():
            if other.name != route.name and (clash := set(other.hostnames) & set(route.hostnames)):
                raise InvalidRoute(f"hostname {clash.pop()!r} is claimed by {other.name!r}")
        self.routes[route.name] = route
        self.history.append(route)

    def remove(self, service: str) -> None:
        self._check()
        self.routes.pop(service, None)

    def ready(self, service: str) -> set[str]:
        route = self.routes.get(service)
        if route is None:
            return set()
        return {s.name for s in route.servers if s.state is ServerState.READY}

    def _check(self) -> None:
        if not self.available:
            raise HAProxyUnavailable("the memory router was made unavailable by the test")


class FakeProber:
    def __init__(self, engine: MemoryEngine) -> None:
        self.engine = engine
        self.sick_images: set[str] = set()
        self.sick_instances: set[str] = set()
        self.probes = 0
        self.healthy: Callable[[Instance], bool] = self._default

    def _default(self, instance: Instance) -> bool:
        if instance.id in self.sick_instances:
            return False
        return not any(marker in instance.image for marker in self.sick_images)

    async def probe(self, address: str, check: HealthCheck) -> ProbeResult:
        self.probes += 1
        for instance in self.engine.list({}):
            if instance.running and instance.address == address:
                if self.healthy(instance):
                    return ProbeResult(True, f"{check.describe()}: HTTP 200")
                return ProbeResult(False, f"{check.describe()}: connection refused")
        return ProbeResult(False, "connection refused")


@dataclass(frozen=True)
class Push:
    id: int
    repository: str
    tag: str | None
    digest: str
    actor: str


class MemoryPushLog:
    """The registry's push log, in memory: `record` is a push the registry committed."""

    def __init__(self) -> None:
        self.pushes: list[Push] = []

    def record(self, repository: str, tag: str | None, digest: str, actor: str = "alice") -> Push:
        push = Push(len(self.pushes) + 1, repository, tag, digest, actor)
        self.pushes.append(push)
        return push

    def pushes_after(self, position: int, limit: int = 100) -> list[Push]:
        return [p for p in self.pushes if p.id > position][:limit]

    def last_push(self) -> int:
        return len(self.pushes)
