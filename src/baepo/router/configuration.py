"""Routing table → HAProxy configuration and host map (pure; no I/O).

What the rendered configuration does:

- `frontend http` on `http_port` answers a request for a host it serves with a 308 redirect to
  the same URL on HTTPS, and any other host with the 404 page; ACME http-01 challenges
  (`/.well-known/acme-challenge/`) go to Baepo's challenge responder when one is configured.
- `frontend https` on `https_port` terminates TLS with the certificates of a crt-list
  (`alpn h2,http/1.1`), then picks a backend by looking the Host header up in the host map:
  `host → svc_<service>` (or `baepo_paused` while a service is paused). Unknown hosts get
  `baepo_not_found`, a plain 404 page.
- One backend per service, `balance leastconn` (a dynamic algorithm, so `add server` works at
  runtime), one server per instance with `maxconn <max concurrency>`: requests beyond it wait
  in the backend queue (`timeout queue`) instead of overloading the instance.
- Baepo's own registry and API answer over HTTPS at `registry_hostname` (`registry.<domain>`),
  ahead of the host map, proxied to `registry_address` (Baepo's loopback port) with the
  router's certificate: HAProxy's timeouts then shield the API from slow or half-sent requests
  (`timeout http-request` covers the headers and, with `http-buffer-request`, the first
  body bytes). Over plain HTTP that host is redirected to HTTPS like a service's.
- Health checks of serving instances run in HAProxy, as the route's `Check` says: a TCP
  connect, or `option httpchk` with a GET of the path that must answer 2xx; `inter`, `rise`
  and `fall` on every server line (a server added at runtime inherits no `default-server`, so
  the line carries them; `HAProxyRouter` then enables its checks), `timeout check` per backend.
  The path and timeout are backend lines, so a service whose check changes costs a reload
  (rare: a new revision with another check). Baepo reads the verdicts back from `show stat`
  and replaces an instance HAProxy finds down; it keeps its own probes for instances that
  are not routed yet (the deploy gate). A check's connect is bounded by `timeout connect`
  and the interval, and `timeout check` bounds the answer after it.
- The HTTPS frontend sends each request's status and times to Baepo over a unix datagram
  socket (`access.sock`; see router/access_log.py): latencies for the metrics, lossy by design.
- A request to a service with no usable server (scaled to zero, or its instance being replaced)
  is held by the activator (`activator.lua`, a Lua action of every service backend) until a
  server is ready, for at most `activator_wait_s`, then answered 503 with `Retry-After`. With
  `activator_address` set, the activator also tells Baepo that requests wait (at most once a
  second per service): `POST http://<activator_address>/internal/activate?service=<name>`,
  with the secret of `activator_token_file` as a bearer token.
- Long requests and WebSockets pass: client/server/tunnel timeouts default to one hour.
- A reload closes a keep-alive client's connection only after answering its next request
  (`option idle-close-on-response`), never while it may be sending one.
- The host map and server states are changed at runtime; only a new or removed service (a new
  backend) or new settings need a reload. `structure_fingerprint` tells them apart.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from baepo.router.table import (
    Check,
    Route,
    RoutingTable,
    Server,
    ServerState,
    normalize_hostname,
)

ACCESS_LOG_FORMAT = "%b %ST %Tr %Ta"
"""What HAProxy logs per request (router/access_log.py reads it): backend, status, Tr, Ta."""

NOT_FOUND_BACKEND = "baepo_not_found"
PAUSED_BACKEND = "baepo_paused"
ACME_BACKEND = "baepo_acme"
REGISTRY_BACKEND = "baepo_registry"
SERVICE_BACKEND_PREFIX = "svc_"  # also in activator.lua
HANDOFF_SERVER = "baepo_handoff"  # also in activator.lua
"""In every service backend, in maintenance: the way to the current worker (see `handoff`)."""
ACTIVATOR_SCRIPT = Path(__file__).with_name("activator.lua")
ACTIVATE_PATH = "/internal/activate"
"""Where the activator tells Baepo that requests wait (`?service=<name>`, a bearer token)."""

NOT_FOUND_PAGE = (
    "<!doctype html><html><head><meta charset=utf-8><title>404 Not Found</title></head>"
    "<body style=font-family:sans-serif;margin:4em><h1>404 Not Found</h1>"
    "<p>No Baepo service answers at this address. Check the hostname, or list your services "
    "with <code>baepo services list</code>.</p></body></html>"
)
PAUSED_PAGE = (
    "<!doctype html><html><head><meta charset=utf-8><title>Service paused</title></head>"
    "<body style=font-family:sans-serif;margin:4em><h1>This service is paused</h1>"
    "<p>Its owner paused it. It answers again once resumed "
    "(<code>baepo services resume</code>).</p></body></html>"
)
UNAVAILABLE_PAGE = (
    "<!doctype html><html><head><meta charset=utf-8><title>503 Service Unavailable</title>"
    "</head><body style=font-family:sans-serif;margin:4em><h1>503 Service Unavailable</h1>"
    "<p>No instance of this service could take the request in time. Try again shortly."
    "</p></body></html>"
)
BAD_GATEWAY_PAGE = (
    "<!doctype html><html><head><meta charset=utf-8><title>502 Bad Gateway</title></head>"
    "<body style=font-family:sans-serif;margin:4em><h1>502 Bad Gateway</h1>"
    "<p>The service answered with something that is not valid HTTP.</p></body></html>"
)
GATEWAY_TIMEOUT_PAGE = (
    "<!doctype html><html><head><meta charset=utf-8><title>504 Gateway Timeout</title></head>"
    "<body style=font-family:sans-serif;margin:4em><h1>504 Gateway Timeout</h1>"
    "<p>The service did not answer in time.</p></body></html>"
)


@dataclass(frozen=True)
class RouterSettings:
    """How the data plane listens and where its files live.

    `state_dir` holds the configuration, host map, certificates and (unless `run_dir` is given)
    the unix sockets; a unix socket path must stay under ~100 bytes, so deep state directories
    should set a short `run_dir`.
    """

    state_dir: Path
    domain: str = "localhost"
    http_port: int = 80
    https_port: int = 443
    bind_address: str = ""  # "" listens on every address
    acme_challenge_address: str | None = None  # "127.0.0.1:<port>" of Baepo's http-01 responder
    registry_hostname: str | None = None  # "registry.<domain>": Baepo's registry and API
    registry_address: str | None = None  # "127.0.0.1:<port>" where they listen
    haproxy_binary: str = "/usr/sbin/haproxy"
    run_dir: Path | None = None
    timeout_connect_s: int = 5
    timeout_request_s: int = 3600  # client, server and tunnel inactivity (long requests, WS)
    timeout_queue_s: int = 60  # how long a request waits for a free instance slot
    timeout_http_request_s: int = 10  # to receive a request's headers (slowloris shield)
    timeout_keep_alive_s: int = 60
    hard_stop_after_s: int = 3600  # how long an old worker may finish its requests after a reload
    activator_wait_s: int = 60
    """How long the activator holds a request for a service with no ready instance."""
    activator_address: str | None = None  # "127.0.0.1:<port>" of Baepo's API: told of waits
    activator_token_file: Path | None = None  # the secret the activator presents there (0600)
    threads: int = field(default_factory=lambda: default_threads(os.cpu_count()))
    """HAProxy's worker threads. The router shares the machine with the services it routes
    to: by default it takes half the CPUs (one on a 2-core machine), which measured faster
    there than two threads competing with the apps (docs/benchmarks.md)."""

    def __post_init__(self) -> None:
        if self.registry_hostname is not None:  # it goes into the configuration verbatim
            object.__setattr__(
                self, "registry_hostname", normalize_hostname(self.registry_hostname)
            )

    @property
    def paths(self) -> RouterPaths:
        return RouterPaths(self.state_dir, self.run_dir or self.state_dir)

    @property
    def registry(self) -> tuple[str, str] | None:
        """(host name, address) of Baepo's own registry and API, if the router serves them."""
        if self.registry_hostname and self.registry_address:
            return self.registry_hostname, self.registry_address
        return None


@dataclass(frozen=True)
class RouterPaths:
    state_dir: Path
    run_dir: Path

    @property
    def config(self) -> Path:
        return self.state_dir / "haproxy.cfg"

    @property
    def host_map(self) -> Path:
        return self.state_dir / "hosts.map"

    @property
    def cert_dir(self) -> Path:
        return self.state_dir / "certs"

    @property
    def crt_list(self) -> Path:
        return self.state_dir / "certs.list"

    @property
    def server_state(self) -> Path:
        return self.state_dir / "servers.state"

    @property
    def fingerprint(self) -> Path:
        return self.state_dir / "haproxy.cfg.fingerprint"

    @property
    def log(self) -> Path:
        return self.state_dir / "haproxy.log"

    @property
    def handoff_socket(self) -> Path:
        """The `handoff` frontend's listener: where a worker a reload replaced sends the
        requests it holds, to the worker that replaced it."""
        return self.run_dir / "handoff.sock"

    @property
    def access_socket(self) -> Path:
        """Where HAProxy sends one datagram per request (router/access_log.py)."""
        return self.run_dir / "access.sock"

    @property
    def stats_socket(self) -> Path:
        return self.run_dir / "haproxy.sock"

    @property
    def master_socket(self) -> Path:
        return self.run_dir / "haproxy-master.sock"

    @property
    def pidfile(self) -> Path:
        return self.run_dir / "haproxy.pid"


def backend_name(service: str) -> str:
    return SERVICE_BACKEND_PREFIX + service


def service_of_backend(backend: str) -> str | None:
    if backend.startswith(SERVICE_BACKEND_PREFIX):
        return backend[len(SERVICE_BACKEND_PREFIX) :]
    return None


def map_target(service: Route) -> str:
    """The backend a service's hostnames lead to (its own, or the paused page)."""
    return PAUSED_BACKEND if service.paused else backend_name(service.name)


def render_map(table: RoutingTable) -> str:
    lines = ["# hostname backend (rendered by Baepo)"]
    for service in sorted(table.services, key=lambda s: s.name):
        lines.extend(f"{host} {map_target(service)}" for host in sorted(service.hostnames))
    return "\n".join(lines) + "\n"


def server_line(server: Server, max_concurrency: int, check: Check | None = None) -> str:
    """The arguments after `server` (config file) or `add server <b>/` (runtime API).

    A draining server starts disabled (no keyword says drain): a new worker has no request
    in flight on it, so neither state sends it any, and the runtime API sets drain next.
    Rendered ready, it would take new requests until then.
    """
    # No idle server connections kept for reuse. An app that closes a connection after each
    # answer (busybox httpd; any app closing an idle one) otherwise races HAProxy reusing it,
    # and clients lost requests (a fifth of them, measured, after any reload) -- even with
    # `retry-on empty-response`. Correct first; the cost is in docs/benchmarks.md.
    line = f"{server.name} {server.address} maxconn {max_concurrency} pool-max-conn 0"
    if check is not None:
        line += f" check inter {check.interval_s}s rise {check.rise} fall {check.fall}"
    if server.state is not ServerState.READY:
        line += " disabled"
    return line


def check_lines(check: Check | None) -> list[str]:
    """A service backend's health check lines (what only a reload changes)."""
    if check is None:
        return []
    lines = [f"    timeout check {check.timeout_s}s"]
    if check.path is not None:
        # Single quotes: HAProxy takes the path verbatim (`Check` refuses quotes and spaces).
        lines += [
            "    option httpchk",
            f"    http-check send meth GET uri '{check.path}' ver HTTP/1.1 "
            "hdr Host baepo-health-check hdr User-Agent baepo-health-check",
            "    http-check expect status 200-299",
        ]
    # Servers carry inter/rise/fall themselves; this line makes a change of them a change of
    # the configuration's structure, so that a reload renders every server with the new ones.
    lines.append(
        f"    default-server inter {check.interval_s}s rise {check.rise} fall {check.fall}"
    )
    return lines


def default_threads(cpus: int | None) -> int:
    return max(1, (cpus or 1) // 2)


def render_config(table: RoutingTable, settings: RouterSettings) -> str:
    paths = settings.paths
    bind = settings.bind_address
    https_suffix = "" if settings.https_port == 443 else f":{settings.https_port}"
    redirect = f"https://%[req.hdr(host),field(1,:)]{https_suffix}%[capture.req.uri]"
    out = [
        "# Rendered by Baepo from its routing table; Baepo rewrites this file.",
        "global",
        f"    stats socket {paths.stats_socket} mode 600 level admin expose-fd listeners",
        "    stats timeout 30s",
        f"    server-state-file {paths.server_state}",
        f"    hard-stop-after {settings.hard_stop_after_s}s",
        f"    nbthread {settings.threads}",
        "    log stderr format short local0 notice",
        "    ssl-default-bind-options ssl-min-ver TLSv1.2",
        *_activator_global(settings),
        "",
        "defaults",
        "    mode http",
        "    log global",
        "    option dontlognull",
        "    option forwardfor",
        # On a reload the old worker answers the next request of an idle keep-alive connection
        # with `Connection: close` instead of closing it under the client (which may be
        # sending a request that moment): a reload loses no request of a keep-alive client.
        "    option idle-close-on-response",
        "    load-server-state-from-file global",
        f"    timeout connect {settings.timeout_connect_s}s",
        f"    timeout client {settings.timeout_request_s}s",
        f"    timeout server {settings.timeout_request_s}s",
        f"    timeout tunnel {settings.timeout_request_s}s",
        f"    timeout queue {settings.timeout_queue_s}s",
        f"    timeout http-request {settings.timeout_http_request_s}s",
        f"    timeout http-keep-alive {settings.timeout_keep_alive_s}s",
        "    timeout client-fin 30s",
        # A refused connection (an instance that just died) is retried on another instance.
        "    retries 3",
        "    retry-on conn-failure",
        "    option redispatch 1",
        _page("http-error status 502", BAD_GATEWAY_PAGE),
        _page("http-error status 503", UNAVAILABLE_PAGE),
        _page("http-error status 504", GATEWAY_TIMEOUT_PAGE),
        "",
        "frontend http",
        f"    bind {bind}:{settings.http_port}",
    ]
    registry = settings.registry
    registry_acl = (
        [f"    acl baepo_registry req.hdr(host),lower,field(1,:) -m str {registry[0]}"]
        if registry
        else []
    )
    # `http-request` rules run before `use_backend`: the redirect must skip ACME challenges.
    skip_acme = ""
    if settings.acme_challenge_address:
        skip_acme = " !acme_challenge"
        out += [
            "    acl acme_challenge path_beg /.well-known/acme-challenge/",
            f"    use_backend {ACME_BACKEND} if acme_challenge",
        ]
    served = f"{{ req.hdr(host),lower,field(1,:),map({paths.host_map}) -m found }}{skip_acme}"
    if registry:
        served += f" || baepo_registry{skip_acme}"
    out += [
        *registry_acl,
        # Only hosts Baepo serves are sent to HTTPS; others get the 404 page right here
        # (over HTTPS they would first meet a certificate that cannot name them).
        f"    http-request redirect location {redirect} code 308 if {served}",
        f"    default_backend {NOT_FOUND_BACKEND}",
        "",
        "frontend https",
        f"    bind {bind}:{settings.https_port} ssl crt-list {paths.crt_list} alpn h2,http/1.1",
        # Each request's status and times, to Baepo's latency figures (router/access_log.py).
        f"    log unix@{paths.access_socket} len 1024 format raw local1 info",
        f'    log-format "{ACCESS_LOG_FORMAT}"',
        "    http-request set-header X-Forwarded-Proto https",
        f"    http-request set-header X-Forwarded-Port {settings.https_port}",
        *registry_acl,
        *([f"    use_backend {REGISTRY_BACKEND} if baepo_registry"] if registry else []),
        "    use_backend %[req.hdr(host),lower,field(1,:),"
        f"map({paths.host_map},{NOT_FOUND_BACKEND})]",
        f"    default_backend {NOT_FOUND_BACKEND}",
        "",
        # A worker that a reload replaced knows only the servers of before: the activator
        # hands a request it holds to the new worker through this listener (the unix socket's
        # path leads to the newest worker's), which routes it again by its host.
        "frontend handoff",
        f"    bind unix@{paths.handoff_socket} mode 600",
        "    use_backend %[req.hdr(host),lower,field(1,:),"
        f"map({paths.host_map},{NOT_FOUND_BACKEND})]",
        f"    default_backend {NOT_FOUND_BACKEND}",
        "",
        f"backend {NOT_FOUND_BACKEND}",
        _page("http-request return status 404", NOT_FOUND_PAGE),
        "",
        f"backend {PAUSED_BACKEND}",
        _page("http-request return status 503", PAUSED_PAGE),
    ]
    if settings.acme_challenge_address:
        out += [
            "",
            f"backend {ACME_BACKEND}",
            f"    server responder {settings.acme_challenge_address}",
        ]
    if registry:
        out += [
            "",
            f"backend {REGISTRY_BACKEND}",
            # The API sees a request only once its headers (and first body bytes) are in.
            "    option http-buffer-request",
            f"    server api {registry[1]}",
        ]
    for service in sorted(table.services, key=lambda s: s.name):
        out += [
            "",
            f"backend {backend_name(service.name)}",
            "    balance leastconn",
            # No usable server (scaled to zero): hold the request until one is ready.
            "    http-request lua.baepo_activate if { nbsrv eq 0 }",
            # A request whose connection an instance reset before answering a byte (it closed
            # as the request came: its node's dockerd stopping it) goes to another instance if
            # it is safe to repeat; any other method gets the 502 (RFC 9110, 9.2.2).
            "    retry-on conn-failure empty-response",
            "    http-request disable-l7-retry unless { method GET HEAD OPTIONS }",
        ]
        out += check_lines(service.check)
        out += [
            f"    server {HANDOFF_SERVER} unix@{paths.handoff_socket} disabled pool-max-conn 0",
        ]
        out += [
            f"    server {server_line(s, service.max_concurrency, service.check)}"
            for s in service.servers
        ]
    return "\n".join(out) + "\n"


def structure_fingerprint(table: RoutingTable, settings: RouterSettings) -> str:
    """A digest of what only a reload can change: the settings and the set of services.

    Servers, hostnames, pause flags and concurrency are left out: they change at runtime. The
    health check stays in: its path and timeout are backend lines.
    """
    skeleton = RoutingTable(
        tuple(
            dataclasses.replace(s, hostnames=(), servers=(), paused=False, max_concurrency=1)
            for s in table.services
        )
    )
    return hashlib.sha256(render_config(skeleton, settings).encode()).hexdigest()


def _activator_global(settings: RouterSettings) -> list[str]:
    """The environment `activator.lua` reads at load, and the script itself."""
    lines = [f"    setenv BAEPO_ACTIVATOR_WAIT_MS {settings.activator_wait_s * 1000}"]
    if settings.activator_address and settings.activator_token_file:
        lines += [
            f"    setenv BAEPO_ACTIVATOR_URL http://{settings.activator_address}{ACTIVATE_PATH}",
            f"    setenv BAEPO_ACTIVATOR_TOKEN_FILE {settings.activator_token_file}",
        ]
    return [*lines, f"    lua-load {ACTIVATOR_SCRIPT}"]


def _page(rule: str, html: str) -> str:
    # Single quotes: HAProxy copies the text verbatim (no escapes, no $VAR expansion).
    assert "'" not in html
    return f"    {rule} content-type 'text/html; charset=utf-8' string '{html}'"
