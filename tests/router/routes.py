"""One-part edits of a service's route, for router tests that build routes step by step.

The `Router` interface takes whole routes (`put`); these read the route with `get`, change one
part and put it back, the way a test tells a story: a service, then a server, then a drain.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from baepo.router import (
    DEFAULT_MAX_CONCURRENCY,
    InvalidRoute,
    Route,
    Router,
    Server,
    ServerState,
    UnknownServer,
    UnknownService,
)


def ensure_service(
    router: Router,
    name: str,
    hostnames: Sequence[str],
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    paused: bool = False,
) -> None:
    """The service's route with these settings, keeping the servers it has."""
    existing = router.get(name)
    servers = existing.route.servers if existing else ()
    router.put(Route(name, tuple(hostnames), servers, max_concurrency, paused))


def add_server(router: Router, service: str, server: str, address: str) -> None:
    """`server` ready at `address` (ready again if it was draining)."""
    route = _route(router, service)
    existing = route.server(server)
    if existing is not None and existing.address != address:
        raise InvalidRoute(
            f"server {server!r} of {service!r} exists with address {existing.address}"
        )
    router.put(route.with_server(Server(server, address, ServerState.READY)))


def drain_server(router: Router, service: str, server: str) -> None:
    route = _route(router, service)
    existing = route.server(server)
    if existing is None:
        raise UnknownServer(f"service {service!r} has no server {server!r}")
    router.put(route.with_server(dataclasses.replace(existing, state=ServerState.DRAIN)))


def remove_server(router: Router, service: str, server: str) -> None:
    router.put(_route(router, service).without_server(server))


def set_paused(router: Router, service: str, paused: bool) -> None:
    router.put(dataclasses.replace(_route(router, service), paused=paused))


def _route(router: Router, service: str) -> Route:
    state = router.get(service)
    if state is None:
        raise UnknownService(f"no service {service!r} in the routing table")
    return state.route
