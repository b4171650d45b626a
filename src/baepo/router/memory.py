"""`MemoryRouter`: the `Router` interface in memory, for unit tests of other rooms.

It keeps the routing table and lets a test play the traffic: `set_load()` says how many
requests a server has in flight or queued, `record()` counts finished responses. It obeys
the same conformance suite as `HAProxyRouter` (a busy server cannot be removed, and so on).
"""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter

from baepo.router.errors import HAProxyUnavailable, ServerBusy
from baepo.router.interface import ServerStats, ServiceStats, TableRouter
from baepo.router.table import RoutingTable, ServerState


class MemoryRouter(TableRouter):
    def __init__(self) -> None:
        self._table = RoutingTable()
        self._lock = threading.RLock()
        self._started = False
        self._load: dict[tuple[str, str], tuple[int, int]] = {}
        self._waiting: dict[str, int] = {}
        self._counts: dict[tuple[str, str], Counter[str]] = {}
        self.reloads = 0  # how many changes would have needed an HAProxy reload
        self.renewals = 0

    def start(self) -> None:
        self._started = True

    def stop(self) -> None:
        self._started = False

    def table(self) -> RoutingTable:
        return self._table

    def apply(self, table: RoutingTable) -> None:
        with self._lock:
            self._need_started()
            if {s.name for s in table.services} != {s.name for s in self._table.services}:
                self.reloads += 1
            self._table = table

    def remove_server(self, service: str, server: str) -> None:
        with self._lock:
            self._need_started()
            svc = self._table.service(service)
            existing = svc.server(server) if svc else None
            if svc is None or existing is None:
                return
            in_flight, queued = self._load.get((service, server), (0, 0))
            if in_flight or queued:
                maint = dataclasses.replace(existing, state=ServerState.MAINT)
                self._table = self._table.with_service(svc.with_server(maint))
                raise ServerBusy(
                    f"del server {service}/{server}",
                    f"{in_flight} requests in flight, {queued} queued",
                )
            self._table = self._table.with_service(svc.without_server(server))
            self._load.pop((service, server), None)

    def server_stats(self, service: str) -> list[ServerStats]:
        with self._lock:
            self._need_started()
            svc = self._service(self._table, service)
            stats = []
            for server in svc.servers:
                in_flight, queued = self._load.get((service, server.name), (0, 0))
                counts = self._counts.get((service, server.name), Counter())
                stats.append(
                    ServerStats(
                        name=server.name,
                        address=server.address,
                        state=server.state,
                        in_flight=in_flight,
                        queued=queued,
                        total=sum(counts.values()),
                        http_2xx=counts["2xx"],
                        http_4xx=counts["4xx"],
                        http_5xx=counts["5xx"],
                    )
                )
            return stats

    def service_stats(self, service: str) -> ServiceStats:
        servers = self.server_stats(service)
        with self._lock:
            waiting = self._waiting.get(service, 0)
        return ServiceStats(
            in_flight=sum(s.in_flight for s in servers),
            queued=waiting + sum(s.queued for s in servers),
            servers=servers,
        )

    def renew_certificates(self) -> list[str]:
        self._need_started()
        return []

    # --- for tests of other rooms -------------------------------------------------------

    def set_load(self, service: str, server: str, in_flight: int, queued: int = 0) -> None:
        with self._lock:
            self._load[(service, server)] = (in_flight, queued)

    def set_waiting(self, service: str, queued: int) -> None:
        """Requests waiting for a free slot on any server of `service`."""
        with self._lock:
            self._waiting[service] = queued

    def record(self, service: str, server: str, status: int, count: int = 1) -> None:
        """Count `count` finished responses with `status` on a server."""
        with self._lock:
            self._counts.setdefault((service, server), Counter())[f"{status // 100}xx"] += count

    def _need_started(self) -> None:
        if not self._started:
            raise HAProxyUnavailable("the router is not started")
