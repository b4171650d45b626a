"""Routes shared by several Baepo processes on one database (PostgreSQL), each with a HAProxy of
its own, all behind one load balancer.

The leader's reconciler decides every route (`SharedRouter.put` and `remove`). Its routing table
is published in the database (`router_tables`: one row, the table as JSON and a version that
grows with each change). Every process runs its own HAProxy and, while it does not lead, makes
it carry the published table (`step`, every `STEP_S`): a request the load balancer sends to any
process's router reaches the same instances.

Each process also reports what its HAProxy sees, every `STEP_S` (`router_peers`, one row per
process): the table version it carries, each service's load (requests in flight per server,
queued, the request counters), and the services whose requests wait at its activator (scaled
to zero). What a process reads through `SharedRouter` adds the other processes' fresh reports
to its own HAProxy's:

- a server's in-flight count is every router's, so a drain ends only when no router has a
  request on it any more; a router still on an older table (it may not drain the server yet)
  counts one request on each draining server until it carries the new one;
- such a router is also counted in each route's `routers_behind`: a deploy ends only once
  every router carries its route (`services create --wait` returns when whichever router the
  balancer picks answers with the new revision, its certificate included);
- the autoscaler's load is the whole fleet's, and the metrics count every router's requests:
  the counters add up what each router's grew by, so one router's restart (its counters back
  at 0) is no reset of the sum;
- a service waiting at another router's activator is demanded here too (`waiting`).

A report older than `STALE_S` is a process that stopped: left out (a load balancer that checks
its routers sends it nothing either). Health stays each router's own: every HAProxy checks the
servers, and the leader acts on what its own finds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, mapped_column

from baepo.clock import Clock
from baepo.router.errors import RouterError
from baepo.router.haproxy import HAProxyRouter
from baepo.router.interface import RouteState
from baepo.router.stats import ServiceStats
from baepo.router.table import Route, RoutingTable, ServerState, table_from_json, table_to_json
from baepo.store.database import Base, Database, affected, reason
from baepo.store.types import UtcDateTime

log = logging.getLogger(__name__)

STEP_S = 0.5
"""How often a process follows the published table and reports its router's load."""
STALE_S = 5.0
"""A report older than this is a process that stopped."""
FORGET_S = 3600.0
"""Reports older than this are deleted (each process's row has an id of its own)."""
TABLE = "routes"


class RouteTableRow(Base):
    __tablename__ = "router_tables"

    name: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    version: Mapped[int] = mapped_column(sa.Integer)
    routes: Mapped[str] = mapped_column(sa.Text)
    """The routing table as `table_to_json` writes it."""


class RouterPeerRow(Base):
    __tablename__ = "router_peers"

    holder: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    version: Mapped[int] = mapped_column(sa.Integer)
    """The published table's version its router carries."""
    report: Mapped[str] = mapped_column(sa.Text)
    """Its router's load and the services waiting at its activator (`Report`, as JSON)."""


@dataclass(frozen=True)
class Counters:
    total: int = 0
    http_2xx: int = 0
    http_4xx: int = 0
    http_5xx: int = 0

    @classmethod
    def of(cls, stats: ServiceStats) -> Counters:
        return cls(stats.total, stats.http_2xx, stats.http_4xx, stats.http_5xx)

    def plus(self, other: Counters) -> Counters:
        return Counters(
            self.total + other.total,
            self.http_2xx + other.http_2xx,
            self.http_4xx + other.http_4xx,
            self.http_5xx + other.http_5xx,
        )

    def grown_since(self, before: Counters) -> Counters:
        """What each counter grew by; one lower than before was reset: all of it is new."""

        def grown(b: int, a: int) -> int:
            return a - b if a >= b else a

        return Counters(
            grown(before.total, self.total),
            grown(before.http_2xx, self.http_2xx),
            grown(before.http_4xx, self.http_4xx),
            grown(before.http_5xx, self.http_5xx),
        )


@dataclass(frozen=True)
class Report:
    """What one process's router sees: per service, in-flight requests by server, queued
    requests and the counters; the services waiting at its activator."""

    version: int
    in_flight: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    queued: Mapping[str, int] = field(default_factory=dict)
    counters: Mapping[str, Counters] = field(default_factory=dict)
    waiting: frozenset[str] = frozenset()

    @classmethod
    def of(cls, version: int, load: Mapping[str, ServiceStats], waiting: set[str]) -> Report:
        return cls(
            version,
            {name: {s.name: s.in_flight for s in st.servers} for name, st in load.items()},
            {name: st.queued for name, st in load.items()},
            {name: Counters.of(st) for name, st in load.items()},
            frozenset(waiting),
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "in_flight": self.in_flight,
                "queued": self.queued,
                "counters": {name: list(vars(c).values()) for name, c in self.counters.items()},
                "waiting": sorted(self.waiting),
            }
        )

    @classmethod
    def from_json(cls, version: int, text: str) -> Report:
        data = json.loads(text)
        return cls(
            version,
            {name: dict(servers) for name, servers in data["in_flight"].items()},
            dict(data["queued"]),
            {name: Counters(*values) for name, values in data["counters"].items()},
            frozenset(data["waiting"]),
        )


class FleetCounters:
    """Request counters summed over every router: each router adds what its own grew by since
    its last report, so a router that restarts or stops never lowers the sum. A router's first
    report is a baseline (what it counted before this process saw it is not new)."""

    def __init__(self) -> None:
        self._last: dict[str, Mapping[str, Counters]] = {}
        self._sums: dict[str, Counters] = {}

    def add(self, source: str, counters: Mapping[str, Counters]) -> None:
        last = self._last.get(source)
        self._last[source] = counters
        if last is None:
            for service in counters:
                self._sums.setdefault(service, Counters())
            return
        for service, now in counters.items():
            grown = now.grown_since(last.get(service, Counters()))
            self._sums[service] = self._sums.get(service, Counters()).plus(grown)

    def forget_all_but(self, sources: set[str], services: set[str]) -> None:
        for source in set(self._last) - sources:
            del self._last[source]
        for service in set(self._sums) - services:
            del self._sums[service]

    def of(self, service: str) -> Counters:
        return self._sums.get(service, Counters())


class SharedRouter:
    """The `Router` of a process that shares its routes with others (see the module's doc).

    The reconciler (leader only) puts and removes routes through it; every process's sampler
    reads the fleet's load from it; `step` runs every `STEP_S` in every process.
    """

    def __init__(
        self,
        local: HAProxyRouter,
        db: Database,
        holder: str,
        clock: Clock,
        demand: Callable[[str], None],
        peers_file: Path | None = None,
    ) -> None:
        self.local = local
        self._peers_file = peers_file
        self._db = db
        self._holder = holder
        self._clock = clock
        self._demand = demand
        self.leading = False
        """Set when this process leads: it publishes the table instead of following it."""
        self._version = 0  # the published table's version this process's router carries
        self._published = ""  # the table as last published (leader), or applied (follower)
        self._publish_lock = threading.Lock()
        self._peers: dict[str, Report] = {}
        self._peers_read = -STEP_S
        self._waiting: set[str] = set()
        self._waiting_lock = threading.Lock()
        self._counters = FleetCounters()
        self._sampled: tuple[float, dict[str, ServiceStats]] = (float("-inf"), {})
        self._reports = 0
        self._failing: str | None = None  # what the last step could not do
        self._others: bool | None = None  # as the peers file says

    # --- the Router interface (the leader's reconciler) ---------------------------------

    def get(self, service: str) -> RouteState | None:
        state = self.local.get(service)
        return None if state is None else self._with_peers(state, self._fresh_peers())

    def states(self) -> dict[str, RouteState]:
        peers = self._fresh_peers()
        return {name: self._with_peers(s, peers) for name, s in self.local.states().items()}

    def put(self, route: Route) -> None:
        self.local.put(route)
        self.publish()

    def remove(self, service: str) -> None:
        self.local.remove(service)
        self.publish()

    def table(self) -> RoutingTable:
        return self.local.table()

    # --- the fleet's load (every process's sampler) -------------------------------------

    def load(self) -> dict[str, ServiceStats]:
        """Every routed service's load on every router: this process's HAProxy's, plus the
        other processes' fresh reports. Services waiting at another router's activator are
        demanded."""
        local = self.local.load()
        self._sampled = (self._clock.monotonic(), local)
        peers = self._fresh_peers()
        self._counters.add(self._holder, {n: Counters.of(s) for n, s in local.items()})
        for holder, report in peers.items():
            self._counters.add(holder, report.counters)
            for service in report.waiting:
                self._demand(service)
        self._counters.forget_all_but({self._holder, *peers}, set(local))
        return {name: self._fleet_stats(name, stats, peers) for name, stats in local.items()}

    def _local_load(self) -> dict[str, ServiceStats]:
        """This process's HAProxy's load for a report: the sampler's last reading (`load`,
        once a second) if it is younger than a step, else one read now."""
        taken, load = self._sampled
        if self._clock.monotonic() - taken < STEP_S:
            return load
        return self.local.load()

    def waiting(self, service: str) -> None:
        """Requests of `service` wait at this process's activator: said in the next report."""
        with self._waiting_lock:
            self._waiting.add(service)

    # --- following and reporting (every process, every STEP_S) --------------------------

    async def run(self) -> None:
        """`step` every `STEP_S`, until cancelled."""
        while True:
            await asyncio.to_thread(self.step)
            await self._clock.sleep(STEP_S)

    def step(self) -> None:
        """Follow the published table (unless leading), then report this router's load."""
        try:
            if not self.leading:
                self._follow()
            self._report()
            self._tell_watchdog(bool(self._fresh_peers()))
        except RouterError as exc:
            self._outage(f"cannot follow the published routes: {exc}")
        except SQLAlchemyError as exc:
            self._outage(f"cannot share the routes: {reason(exc)}")
        else:
            if self._failing is not None:
                log.info("sharing the routes again")
                self._failing = None

    def _tell_watchdog(self, others: bool) -> None:
        """Whether other routers serve (`router/watchdog.py` reads it), written when it changes."""
        if self._peers_file is None or others == self._others:
            return
        try:
            part = self._peers_file.with_name(self._peers_file.name + ".part")
            part.write_text("1\n" if others else "0\n")
            part.replace(self._peers_file)
        except OSError as exc:
            log.warning("cannot write %s: %s", self._peers_file, exc)
            return
        self._others = others

    def _outage(self, why: str) -> None:
        """Logged once when it begins (a step runs twice a second), and when it changes."""
        if why != self._failing:
            log.warning("%s", why)
        self._failing = why

    def publish(self) -> None:
        """Write this router's table as the published one, if it changed (leader)."""
        with self._publish_lock:
            text = table_to_json(self.local.table())
            if text == self._published:
                return
            try:
                with self._db.session() as s, s.begin():
                    row = s.get(RouteTableRow, TABLE, with_for_update=True)
                    if row is None:
                        row = RouteTableRow(name=TABLE, version=0, routes="")
                        s.add(row)
                    row.version += 1
                    row.routes = text
                    version = row.version
            except SQLAlchemyError as exc:
                raise RouterError(f"cannot publish the routes: {reason(exc)}") from exc
            self._published, self._version = text, version

    def _follow(self) -> None:
        with self._db.session() as s:
            version = s.scalar(sa.select(RouteTableRow.version).where(RouteTableRow.name == TABLE))
            if version is None or version == self._version:
                return
            text = s.scalar(sa.select(RouteTableRow.routes).where(RouteTableRow.name == TABLE))
        if text is None:
            return
        if text != self._published:
            self.local.apply(table_from_json(text))
        self._published, self._version = text, version

    def _report(self) -> None:
        with self._waiting_lock:
            waiting, self._waiting = self._waiting, set()
        try:
            report = Report.of(self._version, self._local_load(), waiting)
        except RouterError:
            with self._waiting_lock:
                self._waiting |= waiting
            raise
        now = self._clock.now()
        values = {"seen_at": now, "version": report.version, "report": report.to_json()}
        mine = RouterPeerRow.holder == self._holder
        with self._db.session() as s, s.begin():
            if not affected(s.execute(sa.update(RouterPeerRow).where(mine).values(**values))):
                s.add(RouterPeerRow(holder=self._holder, **values))
            self._reports += 1
            if self.leading and self._reports % 120 == 1:
                forget = now - timedelta(seconds=FORGET_S)
                s.execute(sa.delete(RouterPeerRow).where(RouterPeerRow.seen_at < forget))

    # --- the others' reports ------------------------------------------------------------

    def _fresh_peers(self) -> dict[str, Report]:
        """The other processes' reports younger than `STALE_S`, read at most every `STEP_S`."""
        if self._clock.monotonic() - self._peers_read < STEP_S:
            return self._peers
        since = self._clock.now() - timedelta(seconds=STALE_S)
        try:
            with self._db.session() as s:
                rows = s.execute(
                    sa.select(RouterPeerRow.holder, RouterPeerRow.version, RouterPeerRow.report)
                    .where(RouterPeerRow.seen_at >= since)
                    .where(RouterPeerRow.holder != self._holder)
                ).all()
        except SQLAlchemyError as exc:
            raise RouterError(f"cannot read the other routers' load: {reason(exc)}") from exc
        self._peers = {h: Report.from_json(v, text) for h, v, text in rows}
        self._peers_read = self._clock.monotonic()
        return self._peers

    def _with_peers(self, state: RouteState, peers: Mapping[str, Report]) -> RouteState:
        name = state.route.name
        in_flight = dict(state.in_flight)
        draining = [s.name for s in state.route.servers if s.state is ServerState.DRAIN]
        behind = 0
        for report in peers.values():
            for server, count in report.in_flight.get(name, {}).items():
                in_flight[server] = in_flight.get(server, 0) + count
            if report.version < self._version:  # it may still send requests to them
                behind += 1
                for server in draining:
                    in_flight[server] = in_flight.get(server, 0) + 1
        return replace(state, in_flight=in_flight, routers_behind=behind)

    def _fleet_stats(
        self, name: str, stats: ServiceStats, peers: Mapping[str, Report]
    ) -> ServiceStats:
        extra: dict[str, int] = {}
        queued = stats.queued
        for report in peers.values():
            for server, count in report.in_flight.get(name, {}).items():
                extra[server] = extra.get(server, 0) + count
            queued += report.queued.get(name, 0)
        servers = [replace(s, in_flight=s.in_flight + extra.get(s.name, 0)) for s in stats.servers]
        counters = self._counters.of(name)
        return replace(
            stats,
            in_flight=stats.in_flight + sum(extra.values()),
            queued=queued,
            servers=servers,
            total=counters.total,
            http_2xx=counters.http_2xx,
            http_4xx=counters.http_4xx,
            http_5xx=counters.http_5xx,
        )


WATCHDOG = Path(__file__).resolve().with_name("watchdog.py")
GRACE_S = 6.0
"""How long the watchdog lets a HAProxy serve without its Baepo, when other routers serve: a
supervisor's restart (2 s, then the start) adopts it within that."""


def start_watchdog(run_dir: Path, pidfile: Path, health: str) -> subprocess.Popen[bytes] | None:
    """Start the router's watchdog (`router/watchdog.py`) unless one already watches (None
    then): it runs apart from Baepo (its own session), as the HAProxy does. The caller keeps
    the child, to reap it if it ends first."""
    own = run_dir / "watchdog.pid"
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int(own.read_text().split()[0])
        if WATCHDOG.name.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
            return None
    command = [
        sys.executable, "-I", str(WATCHDOG), "--health", health, "--pidfile", str(pidfile),
        "--peers", str(run_dir / "peers"), "--grace", str(GRACE_S),
    ]  # fmt: skip
    with (run_dir / "watchdog.log").open("ab") as out:
        started = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
        )
    own.write_text(f"{started.pid}\n")
    return started
