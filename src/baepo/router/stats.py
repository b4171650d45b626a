"""The load `HAProxyRouter` reports for a service's servers: HAProxy's counters, typed.

Control reads only what `Router.get` returns (in-flight counts); these are the finer figures
(queues, response classes) for whoever needs them, such as the concurrency autoscaler.
"""

from __future__ import annotations

from dataclasses import dataclass

from baepo.router.table import ServerState


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
    status: str = ""
    """HAProxy's word for it: "UP", "DOWN", "UP 1/5" (going down), "DRAIN", "MAINT", "no check"."""
    check: str = ""
    """The last check's result in words (`check_desc`: "Layer4 connection problem")."""


@dataclass(frozen=True)
class ServiceStats:
    """A service's load: what the concurrency autoscaler reads.

    Requests beyond every server's `maxconn` wait in the service's queue (HAProxy's backend
    queue), not in a server's, so `queued` is counted here.
    """

    in_flight: int
    queued: int
    servers: list[ServerStats]
    total: int = 0  # requests the service took since the current worker started (stot)
    http_2xx: int = 0
    http_4xx: int = 0
    http_5xx: int = 0
