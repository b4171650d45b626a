"""`HAProxyRouter`: the `Router` interface on a real HAProxy that Baepo starts and owns.

Files in the state directory (see `RouterPaths`):

    <state dir>/
    ├── haproxy.cfg              rendered from the routing table (servers included, so a
    │                            reload keeps servers that were added at runtime)
    ├── haproxy.cfg.fingerprint  what the running HAProxy loaded, minus runtime-changeable parts
    ├── hosts.map                hostname → backend, edited at runtime and rewritten on disk
    ├── routes.json              the routing table last applied (adopted after a Baepo restart)
    ├── servers.state            `show servers state`, dumped before each reload (drains survive)
    ├── certs/  certs.list       certificates and the crt-list HAProxy loads
    └── haproxy.log              HAProxy's own alerts

Every change goes through `apply(table)` (a `put` or `remove` is one service's slice of the
table): write the files; reload only when the fingerprint
changed (a service appeared or went away, or the settings changed); then converge the running
worker with the runtime API (servers, states, maxconn, host map, certificates).

`load()` reads every service's load in one `show stat` (the sampler's, once a second);
`states()`, what a reconcile pass reads, reuses the last reading while it is at most
`FRESH_S` old and nothing changed the configuration or the servers since (an `apply`, a reload,
a restart): a pass's verdicts are never older than a second and never from before a change,
and an idle pass costs no `show stat` of its own.

A HAProxy that died (a crash, `kill -9` of its master or of its worker, which takes the master
down too) is started again by `heal()` with the table it carried: the `RouterSupervisor` calls it
a few times a second, and every other operation calls it first. The outage is one warning when
it is found and one info line when HAProxy is back; restarts that fail are retried with a
growing pause (up to `_MAX_RETRY_S`), and their error is logged when it changes.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from baepo.clock import Clock
from baepo.keyfiles import write_private
from baepo.router.certificates import (
    DEFAULT_CERTIFICATE,
    CertificateFiles,
    CertificateSource,
    needs_renewal,
)
from baepo.router.configuration import (
    HANDOFF_SERVER,
    RouterSettings,
    backend_name,
    map_target,
    render_config,
    render_map,
    server_line,
    service_of_backend,
    structure_fingerprint,
)
from baepo.router.errors import (
    CertificateError,
    CommandFailed,
    HAProxyUnavailable,
    InvalidRoute,
    RouterError,
    ServerBusy,
    UnknownServer,
    UnknownService,
)
from baepo.router.interface import RouteState, ServerHealth
from baepo.router.process import HAProxyProcess
from baepo.router.runtime import ProcessList
from baepo.router.stats import ServerStats, ServiceStats
from baepo.router.table import (
    Route,
    RoutingTable,
    ServerState,
    table_from_json,
    table_to_json,
)

log = logging.getLogger(__name__)

_STATE_OF_STATUS = {"MAINT": ServerState.MAINT, "DRAIN": ServerState.DRAIN}
REGISTRY_CERTIFICATE = "baepo_registry"
_FIRST_RETRY_S = 0.25
_MAX_RETRY_S = 5.0
FRESH_S = 1.0
"""How old a reading of the load `states()` may reuse (the sampler reads once a second)."""


@dataclass(frozen=True)
class _Reading:
    """One `load()`: when it was taken, the change it saw last and the table it read with."""

    taken: float
    generation: int
    table: RoutingTable
    load: dict[str, ServiceStats]


@dataclass(eq=False)
class _Edit:
    change: Callable[[RoutingTable], RoutingTable]
    done: bool = False
    error: RouterError | None = None


class HAProxyRouter:
    def __init__(
        self, settings: RouterSettings, certificates: CertificateSource, clock: Clock
    ) -> None:
        self.settings = settings
        self.paths = settings.paths
        self._source = certificates
        self._clock = clock
        self._files = CertificateFiles(self.paths.cert_dir, self.paths.crt_list)
        self._process = HAProxyProcess(settings)
        self._api = self._process.worker
        self._table = RoutingTable()
        self._lock = threading.RLock()
        self._queue: list[_Edit] = []  # route changes waiting for the lock (see `_edit`)
        self._queue_lock = threading.Lock()
        self._started = False
        # Servers gone from the table that HAProxy still holds idle connections to: deleted
        # once their connections are purged (each heal and apply tries again).
        self._leaving: set[tuple[str, str]] = set()
        self._outage: _Outage | None = None
        # Bumped (under the lock) by every change to HAProxy's configuration or servers: a
        # reading taken before it is no answer for `states()`.
        self._generation = 0
        self._reading: _Reading | None = None
        self.adopted = False  # whether start() found the HAProxy of a previous Baepo

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            try:
                for directory in (self.paths.state_dir, self.paths.run_dir, self.paths.cert_dir):
                    directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise HAProxyUnavailable(f"cannot create {exc.filename}: {exc}") from exc
            for name, hostnames in self._own_certificates():
                self._ensure_certificate(name, hostnames, live=False)
            if self._process.adopt():
                self.adopted = True
                self._table = self._saved_table()
                self._started = True
                self.apply(self._table)  # heal anything that drifted while nobody watched
                return
            self._start_process(self._table)
            self._started = True

    def stop(self) -> None:
        with self._lock:
            self._process.stop()
            self._started = False
            self._outage = None

    def heal(self) -> bool:
        """Start HAProxy again if it died, with the current table and certificates.

        Returns whether HAProxy runs (False before `start()`, after `stop()`, or while a
        restart keeps failing). Cheap when it runs: a signal-0 to the master's pid.
        """
        with self._lock:
            if not self._started:
                return False
            if self._process.running():
                self._delete_leaving()
                return True
            return self._restart()

    @property
    def pid(self) -> int | None:
        """The HAProxy master's pid (started or adopted), if it runs."""
        return self._process.pid

    def processes(self) -> ProcessList:
        """The master's view: its reload count, the current worker and old workers."""
        with self._lock:
            self._need_running()
            return self._process.processes()

    # --- the Router interface -----------------------------------------------------------

    def get(self, service: str) -> RouteState | None:
        route = self._table.service(service)
        if route is None:
            return None
        return _route_state(route, self.service_stats(service))

    def states(self) -> dict[str, RouteState]:
        """Every route's state, from the last `load()` if it is fresh (see `FRESH_S`)."""
        reading = self._reading
        if (
            reading is None
            or reading.generation != self._generation
            or self._clock.monotonic() - reading.taken > FRESH_S
        ):
            reading = self._read()
        return {r.name: _route_state(r, reading.load.get(r.name)) for r in reading.table.services}

    def put(self, route: Route) -> None:
        self._edit(lambda t: t if t.service(route.name) == route else t.with_service(route))

    def remove(self, service: str) -> None:
        self._edit(lambda t: t.without_service(service) if t.service(service) else t)

    def _edit(self, change: Callable[[RoutingTable], RoutingTable]) -> None:
        """Apply one route's change, together with those asked for meanwhile (group commit).

        The reconciler converges services concurrently; each change is a read-modify-write of
        the one routing table, so they take turns. Whoever takes the lock applies every change
        queued by then, in one apply: fifty services changing at once cost one reload, not
        fifty. A change that is itself wrong (a reserved host name) fails alone; if the
        combined apply fails, each change is applied on its own, so one bad route cannot fail
        the others.
        """
        mine = _Edit(change)
        with self._queue_lock:
            self._queue.append(mine)
        with self._lock:
            if not mine.done:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                try:
                    self._apply_batch(batch)
                except BaseException as exc:  # a bug: no queued change may wait forever on it
                    for edit in batch:
                        if not edit.done:
                            edit.error = edit.error or RouterError(f"route change failed: {exc}")
                            edit.done = True
                    raise
        if mine.error is not None:
            raise mine.error

    def _apply_batch(self, batch: list[_Edit]) -> None:
        table = self._table
        for edit in batch:
            try:
                candidate = edit.change(table)
                self._check_reserved(candidate)
            except RouterError as exc:
                edit.error = exc
                continue
            table = candidate
        pending = [e for e in batch if e.error is None]
        try:
            if table != self._table:
                self.apply(table)
        except RouterError as exc:
            if len(pending) == 1:
                pending[0].error = exc
            else:
                for edit in pending:  # one at a time: the failure stays with its own route
                    try:
                        changed = edit.change(self._table)
                        if changed != self._table:
                            self.apply(changed)
                    except RouterError as alone:
                        edit.error = alone
        for edit in batch:
            edit.done = True

    # --- the whole table ----------------------------------------------------------------

    def table(self) -> RoutingTable:
        return self._table

    def apply(self, table: RoutingTable) -> None:
        self._check_reserved(table)
        with self._lock:
            self._need_running()
            self._generation += 1  # before any change: a failed apply may have made some
            fingerprint = structure_fingerprint(table, self.settings)
            reload = fingerprint != self._loaded_fingerprint()
            certificates = [c for s in table.services for c in self._certificates(s)]
            wanted = {name for name, _ in certificates + self._own_certificates()}
            for name in set(self._files.names()) - wanted:
                self._files.remove(name)  # HAProxy drops it at the next reload
            for name, hostnames in certificates:
                self._ensure_certificate(name, hostnames, live=not reload)
            if reload:
                self._write_files(table)
                self._write(self.paths.server_state, self._api.servers_state())
                self._process.reload()
                self._write(self.paths.fingerprint, fingerprint)
                self._converge(table)
            else:
                # Traffic first: the runtime API moves it at once, while the files matter only
                # to the next start or reload, and a durable write can stall behind a busy disk
                # (an image being unpacked) for seconds.
                self._converge(table)
                self._write_files(table)
            # Only a converged table counts as applied: after a failure the next apply of the
            # same table converges again instead of finding nothing to do.
            self._table = table
            self._delete_leaving()

    # --- observing ----------------------------------------------------------------------

    def service_stats(self, service: str) -> ServiceStats:
        """The load on a service's servers; `UnknownService` if it has no route."""
        with self._lock:
            self._need_running()
            if self._table.service(service) is None:
                raise UnknownService(f"no service {service!r} in the routing table")
            backend = backend_name(service)
            rows = self._api.stats(backend)
            old_workers = self._process.processes().old_workers
        old = self._old_in_flight(old_workers, backend)
        return self._service_stats(backend, rows, old.get(backend, {}))

    def load(self) -> dict[str, ServiceStats]:
        """Every routed service's load, from one `show stat` of the worker (and one of each old
        worker still finishing requests after a reload): what a sampler reads once a second."""
        return self._read().load

    def _read(self) -> _Reading:
        with self._lock:
            self._need_running()
            taken, generation, table = self._clock.monotonic(), self._generation, self._table
            rows = self._api.stats()
            old_workers = self._process.processes().old_workers
        routed = {backend_name(s.name): s.name for s in table.services}
        old = self._old_in_flight(old_workers, None)
        by_backend: dict[str, list[dict[str, str]]] = {}
        for row in rows:
            if row.get("pxname") in routed:
                by_backend.setdefault(row["pxname"], []).append(row)
        load = {
            routed[backend]: self._service_stats(backend, backend_rows, old.get(backend, {}))
            for backend, backend_rows in by_backend.items()
        }
        reading = _Reading(taken, generation, table, load)
        # Kept whatever came since: `states()` takes it only while its generation is current.
        self._reading = reading
        return reading

    def _old_in_flight(
        self, old_workers: list[int], backend: str | None
    ) -> dict[str, dict[str, int]]:
        """Requests still running on old workers (after a reload), by backend and server: they
        count as in flight too. Asked outside the lock and briefly: a slow old worker must not
        hold up route changes."""
        old: dict[str, dict[str, int]] = {}
        for pid in old_workers:
            try:
                old_rows = self._process.old_worker_stats(pid, backend)
            except HAProxyUnavailable:
                continue  # it just finished
            except CommandFailed as exc:
                if "Can't find the target PID" in exc.output or not exc.output.strip():
                    # It finished between the listing and the question (an exiting worker
                    # may also close the master's relay without a word).
                    continue
                if "No such proxy" not in exc.output:
                    raise
                continue  # it predates the service, so none of the service's requests are there
            for row in old_rows:
                if row.get("type") != "2":
                    continue
                servers = old.setdefault(row["pxname"], {})
                servers[row["svname"]] = servers.get(row["svname"], 0) + _int(row.get("scur"))
        return old

    def _service_stats(
        self, backend: str, rows: list[dict[str, str]], old: dict[str, int]
    ) -> ServiceStats:
        servers = [
            ServerStats(
                name=row["svname"],
                address=row.get("addr", ""),
                state=_state(row.get("status", "")),
                in_flight=_int(row.get("scur")) + old.get(row["svname"], 0),
                queued=_int(row.get("qcur")),
                total=_int(row.get("stot")),
                http_2xx=_int(row.get("hrsp_2xx")),
                http_4xx=_int(row.get("hrsp_4xx")),
                http_5xx=_int(row.get("hrsp_5xx")),
                status=row.get("status", ""),
                check=row.get("check_desc", ""),
            )
            for row in rows
            if row.get("type") == "2"
            and row["svname"] != HANDOFF_SERVER
            and (backend, row["svname"]) not in self._leaving
        ]
        proxy = next((r for r in rows if r.get("type") == "1"), {})
        return ServiceStats(
            in_flight=sum(s.in_flight for s in servers),
            queued=_int(proxy.get("qcur")),
            servers=servers,
            total=_int(proxy.get("stot")),
            http_2xx=_int(proxy.get("hrsp_2xx")),
            http_4xx=_int(proxy.get("hrsp_4xx")),
            http_5xx=_int(proxy.get("hrsp_5xx")),
        )

    def renew_certificates(self) -> list[str]:
        with self._lock:
            self._need_running()
            renewed = []
            wanted = self._own_certificates() + [
                c for s in self._table.services for c in self._certificates(s)
            ]
            for name, hostnames in wanted:
                if self._ensure_certificate(name, hostnames, live=True):
                    renewed.append(name)
            return renewed

    # --- inside -------------------------------------------------------------------------

    def _start_process(self, table: RoutingTable) -> None:
        """Start a new HAProxy on `table`'s files (none runs) and converge it to `table`."""
        self._generation += 1
        for service in table.services:
            for name, hostnames in self._certificates(service):
                self._ensure_certificate(name, hostnames, live=False)
        # The crt-list names certificates by path: written again from the certificate
        # directory, so that one restored from a backup (without its list) or moved starts.
        try:
            self._files.write_crt_list()
        except OSError as exc:
            raise HAProxyUnavailable(f"cannot write {self.paths.crt_list}: {exc}") from exc
        self._write_files(table)
        if not self.paths.server_state.exists():
            self._write(self.paths.server_state, "1\n")
        self._process.start()
        self._write(self.paths.fingerprint, structure_fingerprint(table, self.settings))
        # The configuration lists every server, but drains live only in the runtime state
        # (and the state file may be older): set them again.
        self._converge(table)

    def _restart(self) -> bool:
        """HAProxy died: start it again on the current table (caller holds the lock)."""
        now = self._clock.monotonic()
        outage = self._outage
        if outage is None:
            outage = self._outage = _Outage(since=now, pid=self._process.pid)
            log.warning(
                "HAProxy (master pid %s) is gone: starting it again with %d services",
                outage.pid,
                len(self._table.services),
            )
        elif now < outage.next_attempt:
            return False
        try:
            self._process.stop()  # reaps it, if it was our child
            self._process.wait_for_leftovers()  # its workers, still closing their listeners
            self._start_process(self._table)
        except RouterError as exc:
            outage.retry_s = min(_MAX_RETRY_S, outage.retry_s * 2)
            outage.next_attempt = now + outage.retry_s
            if str(exc) != outage.error:
                outage.error = str(exc)
                log.warning("cannot start HAProxy again: %s (retrying)", exc)
            return False
        log.info(
            "HAProxy is back (master pid %s) after %.1f s, routing %d services",
            self._process.pid,
            self._clock.monotonic() - outage.since,
            len(self._table.services),
        )
        self._outage = None
        return True

    def _converge(self, table: RoutingTable) -> None:
        """Make the running worker's servers and host map match `table` (runtime API only)."""
        rows = [r for r in self._api.stats() if r.get("type") == "2"]
        running: dict[str, dict[str, dict[str, str]]] = {}
        for r in rows:
            running.setdefault(r["pxname"], {})[r["svname"]] = r
        for service in table.services:
            backend = backend_name(service.name)
            observed = running.get(backend, {})
            for server in service.servers:
                row: dict[str, str] | None = observed.pop(server.name, None)
                if row is not None and row.get("addr") != server.address:
                    self._delete(backend, server.name)
                    row = None
                if row is None:
                    line = server_line(server, service.max_concurrency, service.check)
                    self._api.add_server(backend, line)
                    if service.check is not None:
                        self._api.enable_health(backend, server.name)
                    row = {"status": "MAINT", "slim": str(service.max_concurrency)}
                if _state(row.get("status", "")) is not server.state:
                    self._api.set_server_state(backend, server.name, server.state.value)
                if _int(row.get("slim")) != service.max_concurrency:
                    self._api.set_server_maxconn(backend, server.name, service.max_concurrency)
            observed.pop(HANDOFF_SERVER, None)  # the configuration's, in every backend
            for extra in observed:  # running, but no longer wanted
                try:
                    self._delete(backend, extra)
                except ServerBusy:  # deleted once its connections are done (in maint)
                    self._leaving.add((backend, extra))
        self._converge_map(table)

    def _converge_map(self, table: RoutingTable) -> None:
        wanted = {h: map_target(s) for s in table.services for h in s.hostnames}
        running = self._api.show_map(self.paths.host_map)
        for host, target in wanted.items():
            if host not in running:
                self._api.add_map(self.paths.host_map, host, target)
            elif running[host] != target:
                self._api.set_map(self.paths.host_map, host, target)
        for host in running.keys() - wanted.keys():
            self._api.del_map(self.paths.host_map, host)

    def _delete_leaving(self) -> None:
        for backend, server in sorted(self._leaving):
            wanted = self._table.service(service_of_backend(backend) or "")
            if wanted is not None and wanted.server(server) is not None:
                self._leaving.discard((backend, server))  # wanted again meanwhile
                continue
            try:
                self._api.del_server(backend, server)
            except UnknownServer:
                pass
            except (ServerBusy, CommandFailed, HAProxyUnavailable):
                continue
            self._leaving.discard((backend, server))

    def _delete(self, backend: str, server: str) -> None:
        self._api.set_server_state(backend, server, ServerState.MAINT.value)
        self._api.del_server(backend, server)

    def _ensure_certificate(self, name: str, hostnames: tuple[str, ...], live: bool) -> bool:
        """Issue `name` if missing, expiring or for other hosts; install it at runtime if
        `live` (otherwise the next start or reload loads it). Returns whether it changed."""
        if not needs_renewal(self._files.read(name), hostnames, self._clock.now()):
            return False
        issued = self._source.issue(hostnames)
        path = self._files.write(name, issued.pem)
        if live:
            try:
                if str(path) not in self._api.ssl_certs():
                    self._api.new_ssl_cert(path)
                    self._api.set_ssl_cert(path, issued.pem)
                    self._api.commit_ssl_cert(path)
                    self._api.add_crt_list(self.paths.crt_list, path)
                else:
                    self._api.set_ssl_cert(path, issued.pem)
                    self._api.commit_ssl_cert(path)
            except HAProxyUnavailable as exc:
                raise CertificateError(f"cannot install certificate {name}: {exc}") from exc
        return True

    def _certificates(self, service: Route) -> list[tuple[str, tuple[str, ...]]]:
        """A service's certificates: one for its names under the domain, one for its custom
        domains. Kept apart so each comes from its own issuer (the local CA, ACME) and names
        the service's own host explicitly: clients refuse `*.localhost`, a wildcard directly
        over a single label, so the default certificate cannot stand in for it."""
        domain = self.settings.domain
        own = tuple(h for h in service.hostnames if h == domain or h.endswith("." + domain))
        custom = tuple(h for h in service.hostnames if h not in own)
        name = _cert_name(service.name)
        return [(n, hosts) for n, hosts in ((name, own), (f"{name}_custom", custom)) if hosts]

    def _own_certificates(self) -> list[tuple[str, tuple[str, ...]]]:
        """The certificates that are not a service's: the default one (any other name under
        the domain) and the registry's, which names its host (no wildcard over one label)."""
        domain = self.settings.domain
        own: list[tuple[str, tuple[str, ...]]] = [(DEFAULT_CERTIFICATE, (domain, f"*.{domain}"))]
        if self.settings.registry:
            own.append((REGISTRY_CERTIFICATE, (self.settings.registry[0],)))
        return own

    def _check_reserved(self, table: RoutingTable) -> None:
        """Baepo's registry host belongs to no service. A service that had it before the
        registry took it (a table saved by an older Baepo) keeps routing for its other
        names, with a warning: the registry is matched first, and one stale route must not
        stop every other service's changes (and the router's start)."""
        registry = self.settings.registry
        if registry is None:
            return
        for service in table.services:
            if registry[0] not in service.hostnames:
                continue
            before = self._table.service(service.name)
            if before is not None and registry[0] in before.hostnames:
                log.warning(
                    "service %s names %s, where Baepo's registry answers; the registry wins",
                    service.name,
                    registry[0],
                )
                continue
            raise InvalidRoute(
                f"{registry[0]} is Baepo's registry; service {service.name!r} cannot "
                "take that host name"
            )

    def _write_files(self, table: RoutingTable) -> None:
        # The map and configuration are derived from routes.json: replaced atomically, but
        # only routes.json is worth waiting for the disk.
        self._write(self.paths.host_map, render_map(table), durable=False)
        self._write(self.paths.config, render_config(table, self.settings), durable=False)
        self._write(self.paths.state_dir / "routes.json", table_to_json(table))

    def _saved_table(self) -> RoutingTable:
        try:
            return table_from_json((self.paths.state_dir / "routes.json").read_text())
        except OSError:
            return RoutingTable()

    def _loaded_fingerprint(self) -> str:
        try:
            return self.paths.fingerprint.read_text()
        except OSError:
            return ""

    def _write(self, path: Path, text: str, durable: bool = True) -> None:
        try:
            if durable:
                write_private(path, text.encode(), mode=0o644)
            else:
                tmp = path.with_name(f".{path.name}.tmp")
                tmp.write_text(text)
                os.replace(tmp, path)
        except OSError as exc:
            raise HAProxyUnavailable(f"cannot write {path}: {exc}") from exc

    def _need_running(self) -> None:
        if not self._started:
            raise HAProxyUnavailable("the router is not started")
        if not self._process.running() and not self._restart():
            error = self._outage.error if self._outage else None
            raise HAProxyUnavailable(f"HAProxy is down: {error or 'restarting it'}")


@dataclass
class _Outage:
    """HAProxy found dead and not yet running again."""

    since: float
    pid: int | None
    retry_s: float = _FIRST_RETRY_S / 2
    next_attempt: float = 0.0
    error: str | None = None


def _route_state(route: Route, stats: ServiceStats | None) -> RouteState:
    """The route with its servers' load and, where HAProxy checks them, their health."""
    servers = {s.name: s for s in stats.servers} if stats else {}
    health: dict[str, ServerHealth] = {}
    if route.check is not None:
        for server in route.servers:
            row = servers.get(server.name)
            if server.state is ServerState.MAINT or row is None:
                continue
            word = row.status.split(" ")[0]
            if word == "DOWN":
                health[server.name] = ServerHealth(False, row.check or row.status)
            elif word in ("UP", "DRAIN", "NOLB"):  # "UP 1/5": failing, not yet down
                health[server.name] = ServerHealth(True, row.check or row.status)
    return RouteState(route, {s.name: s.in_flight for s in servers.values()}, health)


def _cert_name(service: str) -> str:
    return f"svc_{service}"


def _state(status: str) -> ServerState:
    return _STATE_OF_STATUS.get(status.split(" ")[0], ServerState.READY)


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0
