"""The `Router` interface: what `control/` and `autoscale/` ask of the data plane.

Implementations: `HAProxyRouter` (the real data plane) and `MemoryRouter` (a fake for other
rooms' unit tests). Both pass one conformance suite (`tests/router/test_conformance.py`).

Semantics shared by every implementation:

- Every operation needs `start()` first (`HAProxyUnavailable` otherwise).
- `apply(table)` converges the data plane to a whole table; the other mutations are shortcuts
  that change one part of the current table. All of them are idempotent.
- `add_server` puts a server in `ready`; adding an existing server again (same address) makes
  it ready again. `drain_server` stops new requests to it; requests in flight finish.
- `remove_server` of a server with requests in flight raises `ServerBusy` and leaves it in
  `maint` (drain first, wait for `in_flight == 0`, then remove). Removing an unknown server or
  service is a no-op; other operations on an unknown service raise `UnknownService`.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from baepo.router.errors import InvalidRoute, UnknownServer, UnknownService
from baepo.router.table import (
    DEFAULT_MAX_CONCURRENCY,
    RoutingTable,
    Server,
    ServerState,
    Service,
)


@dataclass(frozen=True)
class ServerStats:
    """One backend server's load, as HAProxy counts it."""

    name: str
    address: str
    state: ServerState
    in_flight: int  # requests being served now (HAProxy scur), old workers included
    queued: int  # requests waiting for a free slot (qcur)
    total: int  # requests sent to it since the current worker started (stot)
    http_2xx: int = 0
    http_4xx: int = 0
    http_5xx: int = 0


@dataclass(frozen=True)
class ServiceStats:
    """A service's load: what the concurrency autoscaler reads.

    Requests beyond every server's `maxconn` wait in the service's queue (HAProxy's backend
    queue), not in a server's, so `queued` is counted here.
    """

    in_flight: int
    queued: int
    servers: list[ServerStats]


class Router(Protocol):
    def start(self) -> None:
        """Start the data plane, or adopt the one a previous Baepo left running."""
        ...

    def stop(self) -> None: ...

    def table(self) -> RoutingTable:
        """The routing table the data plane carries now."""
        ...

    def apply(self, table: RoutingTable) -> None: ...

    def ensure_service(
        self,
        name: str,
        hostnames: Sequence[str],
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        paused: bool = False,
    ) -> None: ...

    def remove_service(self, name: str) -> None: ...

    def add_server(self, service: str, server: str, address: str) -> None: ...

    def drain_server(self, service: str, server: str) -> None: ...

    def remove_server(self, service: str, server: str) -> None: ...

    def set_paused(self, service: str, paused: bool) -> None: ...

    def server_stats(self, service: str) -> list[ServerStats]: ...

    def service_stats(self, service: str) -> ServiceStats: ...

    def renew_certificates(self) -> list[str]:
        """Re-issue certificates that expire soon or name other hosts; returns their names."""
        ...


class TableRouter(ABC):
    """The one-part mutations of `Router`, written once over `table()` and `apply()`."""

    @abstractmethod
    def table(self) -> RoutingTable: ...

    @abstractmethod
    def apply(self, table: RoutingTable) -> None: ...

    def ensure_service(
        self,
        name: str,
        hostnames: Sequence[str],
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        paused: bool = False,
    ) -> None:
        table = self.table()
        existing = table.service(name)
        servers = existing.servers if existing else ()
        service = Service(name, tuple(hostnames), servers, max_concurrency, paused)
        if service != existing:
            self.apply(table.with_service(service))

    def remove_service(self, name: str) -> None:
        table = self.table()
        if table.service(name) is not None:
            self.apply(table.without_service(name))

    def add_server(self, service: str, server: str, address: str) -> None:
        table = self.table()
        svc = self._service(table, service)
        existing = svc.server(server)
        if existing is not None and existing.address != address:
            raise InvalidRoute(
                f"server {server!r} of {service!r} exists with address {existing.address}"
            )
        wanted = Server(server, address, ServerState.READY)
        if existing != wanted:
            self.apply(table.with_service(svc.with_server(wanted)))

    def drain_server(self, service: str, server: str) -> None:
        table = self.table()
        svc = self._service(table, service)
        existing = svc.server(server)
        if existing is None:
            raise UnknownServer(f"service {service!r} has no server {server!r}")
        if existing.state is ServerState.READY:
            drained = dataclasses.replace(existing, state=ServerState.DRAIN)
            self.apply(table.with_service(svc.with_server(drained)))

    def set_paused(self, service: str, paused: bool) -> None:
        table = self.table()
        svc = self._service(table, service)
        if svc.paused != paused:
            self.apply(table.with_service(dataclasses.replace(svc, paused=paused)))

    @staticmethod
    def _service(table: RoutingTable, name: str) -> Service:
        service = table.service(name)
        if service is None:
            raise UnknownService(f"no service {name!r} in the routing table")
        return service
