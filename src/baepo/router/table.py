"""The routing table: what the data plane should route, as plain immutable data.

A `RoutingTable` lists services' routes; a service's `Route` has the hostnames it answers (its
`<service>.<domain>` name and custom domains), its backend servers (one per running instance,
at `<IPv4>:<port>`, its container's address on the service's network; each `ready`, `drain`
or `maint`), the concurrency one instance takes before requests queue (App Runner's
MaxConcurrency → HAProxy's per-server `maxconn`), whether it is paused, and the health check
the data plane runs on its serving instances (`Check`: TCP connect, or HTTP GET of a path).
The renderer (`configuration.py`) turns a table into HAProxy's configuration and host map;
`HAProxyRouter` keeps HAProxy converged to one.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from baepo.router.errors import InvalidRoute

DEFAULT_MAX_CONCURRENCY = 100  # App Runner's default MaxConcurrency

_SERVICE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_SERVER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_UNSAFE = re.compile(r"[\s\"'\\#]|[^\x21-\x7e]")  # what a rendered check path may not hold
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class ServerState(StrEnum):
    """A server's administrative state, as HAProxy's `set server ... state` names it."""

    READY = "ready"  # takes new requests
    DRAIN = "drain"  # finishes what it has, takes no new requests
    MAINT = "maint"  # takes nothing; the step before removal


@dataclass(frozen=True)
class Server:
    name: str
    address: str  # "172.18.0.5:8080": any IPv4 literal and port
    state: ServerState = ServerState.READY

    def __post_init__(self) -> None:
        check_server_name(self.name)
        check_address(self.address)


@dataclass(frozen=True)
class Check:
    """How the data plane checks a route's servers (App Runner's health check, its defaults).

    `path` None is a TCP connect; otherwise an HTTP GET of `path` that must answer 2xx.
    A server is down after `fall` failures in a row and up again after `rise` passes.
    """

    path: str | None = None
    interval_s: int = 5
    timeout_s: int = 2
    rise: int = 1
    fall: int = 5

    def __post_init__(self) -> None:
        if self.path is not None and (not self.path.startswith("/") or _UNSAFE.search(self.path)):
            raise InvalidRoute(f"health check path {self.path!r} must be an absolute URL path")
        for name in ("interval_s", "timeout_s", "rise", "fall"):
            if getattr(self, name) < 1:
                raise InvalidRoute(f"health check {name} must be at least 1")


@dataclass(frozen=True)
class Route:
    """A service's route: what `control/` puts and the data plane carries for one service."""

    name: str  # the service's name
    hostnames: tuple[str, ...]
    servers: tuple[Server, ...] = ()
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    paused: bool = False
    check: Check | None = None
    """None: the data plane checks nothing (every server is taken as up)."""

    def __post_init__(self) -> None:
        check_service_name(self.name)
        object.__setattr__(self, "hostnames", normalize_hostnames(self.hostnames))
        if self.max_concurrency < 1:
            raise InvalidRoute(f"max concurrency must be at least 1, not {self.max_concurrency}")
        names = [s.name for s in self.servers]
        if len(set(names)) != len(names):
            raise InvalidRoute(f"service {self.name!r} lists a server name twice: {names}")

    def server(self, name: str) -> Server | None:
        return next((s for s in self.servers if s.name == name), None)

    def with_server(self, server: Server) -> Route:
        """This service with `server` added, or replacing the server of the same name."""
        kept = tuple(s for s in self.servers if s.name != server.name)
        if len(kept) == len(self.servers):
            return dataclasses.replace(self, servers=(*self.servers, server))
        return dataclasses.replace(
            self, servers=tuple(server if s.name == server.name else s for s in self.servers)
        )

    def without_server(self, name: str) -> Route:
        return dataclasses.replace(self, servers=tuple(s for s in self.servers if s.name != name))


@dataclass(frozen=True)
class RoutingTable:
    services: tuple[Route, ...] = ()

    def __post_init__(self) -> None:
        names = [s.name for s in self.services]
        if len(set(names)) != len(names):
            raise InvalidRoute(f"the routing table lists a service twice: {names}")
        owner: dict[str, str] = {}
        for service in self.services:
            for host in service.hostnames:
                if owner.setdefault(host, service.name) != service.name:
                    raise InvalidRoute(
                        f"hostname {host!r} is claimed by both {owner[host]!r} and {service.name!r}"
                    )

    def service(self, name: str) -> Route | None:
        return next((s for s in self.services if s.name == name), None)

    def with_service(self, service: Route) -> RoutingTable:
        """This table with `service` added, or replacing the service of the same name."""
        if self.service(service.name) is None:
            return RoutingTable((*self.services, service))
        return RoutingTable(tuple(service if s.name == service.name else s for s in self.services))

    def without_service(self, name: str) -> RoutingTable:
        return RoutingTable(tuple(s for s in self.services if s.name != name))

    def host_map(self) -> dict[str, str]:
        """Hostname → service name, for every hostname in the table."""
        return {host: s.name for s in self.services for host in s.hostnames}


def check_service_name(name: str) -> None:
    if not _SERVICE_NAME.fullmatch(name):
        raise InvalidRoute(
            f"service name {name!r} must be a DNS label: lowercase letters, digits and '-'"
        )


def check_server_name(name: str) -> None:
    if not _SERVER_NAME.fullmatch(name):
        raise InvalidRoute(
            f"server name {name!r} must be letters, digits, '-', '_' or '.' (at most 63)"
        )


def check_address(address: str) -> None:
    """An instance address is an IPv4 literal and a port (dynamic servers never resolve names)."""
    host, sep, port = address.rpartition(":")
    try:
        ipaddress.IPv4Address(host)
        ok = bool(sep) and port.isdigit() and 0 < int(port) < 65536
    except ValueError:
        ok = False
    if not ok:
        raise InvalidRoute(f"server address {address!r} must be <IPv4>:<port>")


def normalize_hostname(hostname: str) -> str:
    host = hostname.strip().lower().rstrip(".")
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise InvalidRoute(f"{hostname!r} is not a valid hostname")
    return host


def normalize_hostnames(hostnames: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for hostname in hostnames:
        seen[normalize_hostname(hostname)] = None
    return tuple(seen)


def table_to_json(table: RoutingTable) -> str:
    """The table as JSON (kept next to HAProxy's files, so a restarted Baepo knows what runs)."""
    return json.dumps(
        {
            "services": [
                {
                    "name": s.name,
                    "hostnames": list(s.hostnames),
                    "max_concurrency": s.max_concurrency,
                    "paused": s.paused,
                    "check": dataclasses.asdict(s.check) if s.check else None,
                    "servers": [
                        {"name": v.name, "address": v.address, "state": v.state.value}
                        for v in s.servers
                    ],
                }
                for s in table.services
            ]
        },
        indent=2,
    )


def table_from_json(text: str) -> RoutingTable:
    try:
        data = json.loads(text)
        return RoutingTable(
            tuple(
                Route(
                    name=s["name"],
                    hostnames=tuple(s["hostnames"]),
                    max_concurrency=int(s["max_concurrency"]),
                    paused=bool(s["paused"]),
                    check=Check(**s["check"]) if s.get("check") else None,
                    servers=tuple(
                        Server(v["name"], v["address"], ServerState(v["state"]))
                        for v in s["servers"]
                    ),
                )
                for s in data["services"]
            )
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidRoute(f"not a routing table: {exc}") from exc
