"""The `Router` interface: what `control/` asks of the data plane, one service's route at a time.

The reconciler reads a service's route (its servers, their states and how many requests each
has in flight) and puts the whole route it wants; the router finds the difference (add a
server, set one to drain, delete one, flip the paused page) and applies it without dropping a
request. Starting, stopping, healing and certificate renewal belong to the implementation and
the composition root that owns it, not to this interface.

Implementations: `HAProxyRouter` (the real data plane) and the tests' `MemoryRouter` (a fake
for other rooms' unit tests, in `tests/fakes/router.py`). Both pass one conformance suite
(`tests/router/test_conformance.py`). Semantics shared by every implementation:

- `put(route)` makes the service's route exactly `route` and is idempotent. A server dropped
  from a route while it still serves requests takes no new ones and finishes those (drain
  first and wait for `in_flight == 0` to learn when it is done). A host name belongs to one
  route: putting another service's host name raises `InvalidRoute`.
- `get` of a service without a route is None; `remove` of one is a no-op.
- `states()` is every route's `get` from one look at the data plane: what a reconcile pass
  reads once for all services (one `show stat`, however many services). That look may be up
  to a second old (`HAProxyRouter` reuses its sampler's), but never older than the last
  change made through the router.
- A route with a `Check` has its ready and draining servers checked by the data plane; their
  last verdicts are in `RouteState.health` (a server not checked yet is absent). A server
  found down takes no new requests; whoever owns it decides what to do about it (Baepo
  replaces the instance).
- A data plane that is down raises `HAProxyUnavailable` (a `RouterError`) for any change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from baepo.router.table import Route


@dataclass(frozen=True)
class ServerHealth:
    """The data plane's verdict on a server from its health checks."""

    up: bool
    detail: str
    """The last check's result in words ("Layer4 connection problem", "Layer7 wrong status")."""


@dataclass(frozen=True)
class RouteState:
    """A service's route as the data plane has it now, the load on its servers and their
    health (if the route has a `Check`)."""

    route: Route
    in_flight: Mapping[str, int] = field(default_factory=dict)
    """Server name → requests it is serving now (HAProxy's `scur`, old workers included)."""
    health: Mapping[str, ServerHealth] = field(default_factory=dict)
    """Server name → its last check's verdict; servers not checked (yet) are absent."""
    routers_behind: int = 0
    """Other routers that serve but do not carry this table yet (`SharedRouter`: processes
    still following an older one): what they answer may not be this route yet."""


class Router(Protocol):
    """Blocking calls (the reconciler runs them in a worker thread); raise `RouterError`s."""

    def get(self, service: str) -> RouteState | None:
        """The service's route as the data plane has it now, or None if it has none."""
        ...

    def states(self) -> dict[str, RouteState]:
        """Every route's state (service name → what `get` returns), from one reading."""
        ...

    def put(self, route: Route) -> None:
        """Make the service's route exactly `route` (hostnames, servers and states, paused)."""
        ...

    def remove(self, service: str) -> None:
        """Drop the service's route; its host names answer 404. No-op if it has none."""
        ...
