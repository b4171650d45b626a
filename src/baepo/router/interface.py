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
- A data plane that is down raises `HAProxyUnavailable` (a `RouterError`) for any change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from baepo.router.table import Route


@dataclass(frozen=True)
class RouteState:
    """A service's route as the data plane has it now, and the load on its servers."""

    route: Route
    in_flight: Mapping[str, int] = field(default_factory=dict)
    """Server name → requests it is serving now (HAProxy's `scur`, old workers included)."""


class Router(Protocol):
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
