from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from baepo.router import (
    Check,
    InvalidRoute,
    Route,
    RouterSettings,
    RoutingTable,
    Server,
    ServerState,
)
from baepo.router.configuration import render_config, render_map, structure_fingerprint
from tests.components import missing

SETTINGS = RouterSettings(state_dir=Path("/var/lib/baepo/router"), http_port=80, https_port=443)

TABLE = RoutingTable(
    (
        Route(
            "app",
            ("app.localhost", "www.example.com"),
            (
                Server("s1", "127.0.0.1:8080"),
                Server("s2", "127.0.0.1:8081", ServerState.DRAIN),
                Server("s3", "127.0.0.1:8082", ServerState.MAINT),
            ),
            max_concurrency=25,
        ),
        Route("docs", ("docs.localhost",), paused=True),
    )
)

CHECKED = RoutingTable(
    (
        Route(
            "api",
            ("api.localhost",),
            (Server("a1", "127.0.0.1:9000"),),
            check=Check("/healthz?full=1", interval_s=3, timeout_s=1, rise=2, fall=4),
        ),
        Route("tcp", ("tcp.localhost",), (Server("t1", "127.0.0.1:9001"),), check=Check()),
    )
)
WHOLE = RoutingTable(TABLE.services + CHECKED.services)

HANDOFF = "server baepo_handoff unix@/var/lib/baepo/router/handoff.sock disabled pool-max-conn 0"
"""In every service backend: a held request's way from a replaced worker to the new one."""

RETRIES = [
    "retry-on conn-failure empty-response",
    "http-request disable-l7-retry unless { method GET HEAD OPTIONS }",
]


def backend_of(config: str, name: str) -> list[str]:
    block = config.split(f"\nbackend {name}\n", 1)[1].split("\n\n", 1)[0]
    return [line.strip() for line in block.splitlines()]


def test_each_service_is_a_dynamic_backend_with_one_server_per_instance() -> None:
    config = render_config(TABLE, SETTINGS)
    assert backend_of(config, "svc_app") == [
        "balance leastconn",
        "http-request lua.baepo_activate if { nbsrv eq 0 }",
        *RETRIES,
        HANDOFF,
        "server s1 127.0.0.1:8080 maxconn 25 pool-max-conn 0",
        "server s2 127.0.0.1:8081 maxconn 25 pool-max-conn 0 disabled",  # drain: at runtime
        "server s3 127.0.0.1:8082 maxconn 25 pool-max-conn 0 disabled",
    ]
    assert backend_of(config, "svc_docs") == [
        "balance leastconn",
        "http-request lua.baepo_activate if { nbsrv eq 0 }",
        *RETRIES,
        HANDOFF,
    ]
    assert " check" not in config  # Baepo decides health, not HAProxy


def test_hosts_route_through_the_map_and_paused_services_to_the_paused_page() -> None:
    assert render_map(TABLE).splitlines()[1:] == [
        "app.localhost svc_app",
        "www.example.com svc_app",
        "docs.localhost baepo_paused",
    ]
    config = render_config(TABLE, SETTINGS)
    assert (
        "use_backend %[req.hdr(host),lower,field(1,:),"
        "map(/var/lib/baepo/router/hosts.map,baepo_not_found)]"
    ) in config
    assert "return status 404" in "\n".join(backend_of(config, "baepo_not_found"))
    assert "return status 503" in "\n".join(backend_of(config, "baepo_paused"))


def test_https_frontend_terminates_tls_with_h2_and_the_crt_list() -> None:
    config = render_config(TABLE, SETTINGS)
    assert "bind :443 ssl crt-list /var/lib/baepo/router/certs.list alpn h2,http/1.1" in config
    assert "http-request set-header X-Forwarded-Proto https" in config


def test_the_https_frontend_alone_logs_each_request_to_baepos_socket() -> None:
    config = render_config(TABLE, RouterSettings(state_dir=Path("/s"), run_dir=Path("/run/b")))
    https = config.split("frontend https\n", 1)[1].split("\n\n", 1)[0]
    assert "    log unix@/run/b/access.sock len 1024 format raw local1 info\n" in https
    assert '    log-format "%b %ST %Tr %Ta"' in https
    assert config.count("access.sock") == 1  # not the HTTP frontend's redirects
    elsewhere = RouterSettings(state_dir=Path("/s"), run_dir=Path("/run/c"))
    assert structure_fingerprint(TABLE, elsewhere) != structure_fingerprint(
        TABLE, RouterSettings(state_dir=Path("/s"), run_dir=Path("/run/b"))
    )


@pytest.mark.parametrize(
    ("https_port", "location"),
    [
        (443, "https://%[req.hdr(host),field(1,:)]%[capture.req.uri]"),
        (8443, "https://%[req.hdr(host),field(1,:)]:8443%[capture.req.uri]"),
    ],
)
def test_http_redirects_to_https_on_the_right_port(https_port: int, location: str) -> None:
    settings = RouterSettings(state_dir=Path("/s"), https_port=https_port)
    assert f"http-request redirect location {location} code 308" in render_config(TABLE, settings)


def test_acme_challenges_skip_the_redirect_only_when_a_responder_is_configured() -> None:
    plain = render_config(TABLE, SETTINGS)
    assert "acme" not in plain
    settings = RouterSettings(state_dir=Path("/s"), acme_challenge_address="127.0.0.1:8089")
    config = render_config(TABLE, settings)
    assert "acl acme_challenge path_beg /.well-known/acme-challenge/" in config
    assert "use_backend baepo_acme if acme_challenge" in config
    assert backend_of(config, "baepo_acme") == ["server responder 127.0.0.1:8089"]


def test_long_requests_and_websockets_are_not_cut_short() -> None:
    config = render_config(TABLE, SETTINGS)
    for timeout in ("client", "server", "tunnel"):
        assert f"timeout {timeout} 3600s" in config
    assert "hard-stop-after 3600s" in config


def test_fingerprint_changes_only_with_what_needs_a_reload() -> None:
    base = structure_fingerprint(TABLE, SETTINGS)
    app = TABLE.service("app")
    assert app is not None
    runtime_changes = [
        TABLE.with_service(app.with_server(Server("s9", "127.0.0.1:9999"))),
        TABLE.with_service(Route("app", ("other.localhost",), max_concurrency=3, paused=True)),
    ]
    for table in runtime_changes:
        assert structure_fingerprint(table, SETTINGS) == base
    assert structure_fingerprint(TABLE.without_service("docs"), SETTINGS) != base
    assert structure_fingerprint(TABLE.with_service(Route("new", ())), SETTINGS) != base
    moved = RouterSettings(state_dir=SETTINGS.state_dir, https_port=8443)
    assert structure_fingerprint(TABLE, moved) != base


def test_haproxy_checks_the_servers_of_a_route_with_a_check() -> None:
    config = render_config(WHOLE, SETTINGS)
    assert backend_of(config, "svc_api") == [
        "balance leastconn",
        "http-request lua.baepo_activate if { nbsrv eq 0 }",
        *RETRIES,
        "timeout check 1s",
        "option httpchk",
        "http-check send meth GET uri '/healthz?full=1' ver HTTP/1.1 "
        "hdr Host baepo-health-check hdr User-Agent baepo-health-check",
        "http-check expect status 200-299",
        "default-server inter 3s rise 2 fall 4",
        HANDOFF,
        "server a1 127.0.0.1:9000 maxconn 100 pool-max-conn 0 check inter 3s rise 2 fall 4",
    ]
    assert backend_of(config, "svc_tcp") == [  # App Runner's defaults: a TCP connect
        "balance leastconn",
        "http-request lua.baepo_activate if { nbsrv eq 0 }",
        *RETRIES,
        "timeout check 2s",
        "default-server inter 5s rise 1 fall 5",
        HANDOFF,
        "server t1 127.0.0.1:9001 maxconn 100 pool-max-conn 0 check inter 5s rise 1 fall 5",
    ]
    assert "check" not in " ".join(backend_of(config, "svc_app"))  # no Check, no checks


def test_a_check_changes_the_structure_it_is_rendered_in() -> None:
    base = structure_fingerprint(CHECKED, SETTINGS)
    for check in (None, Check("/other"), Check(interval_s=10), Check(fall=3)):
        table = CHECKED.with_service(Route("tcp", ("tcp.localhost",), check=check))
        assert structure_fingerprint(table, SETTINGS) != base


@pytest.mark.parametrize("path", ["healthz", "/a b", "/it's", '/"', "/é", "/a#b"])
def test_a_check_path_that_cannot_be_rendered_verbatim_is_refused(path: str) -> None:
    with pytest.raises(InvalidRoute):
        Check(path)


@pytest.mark.integration
def test_haproxy_accepts_the_rendered_configuration(tmp_path: Path) -> None:
    if not shutil.which("/usr/sbin/haproxy"):
        missing("HAProxy is not installed")
    from baepo.clock import SystemClock
    from baepo.router.certificates import CertificateFiles, LocalCA

    settings = RouterSettings(state_dir=tmp_path, acme_challenge_address="127.0.0.1:8089")
    files = CertificateFiles(settings.paths.cert_dir, settings.paths.crt_list)
    files.write("default", LocalCA(tmp_path / "ca", SystemClock()).issue(["localhost"]).pem)
    settings.paths.host_map.write_text(render_map(WHOLE))
    settings.paths.config.write_text(render_config(WHOLE, settings))
    done = subprocess.run(
        ["/usr/sbin/haproxy", "-c", "-f", str(settings.paths.config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ALERT" not in done.stdout + done.stderr


@pytest.mark.parametrize(("cpus", "threads"), [(None, 1), (1, 1), (2, 1), (3, 1), (8, 4)])
def test_router_takes_half_the_cpus(cpus: int | None, threads: int) -> None:
    from baepo.router.configuration import default_threads

    assert default_threads(cpus) == threads


def test_threads_are_rendered(tmp_path: Path) -> None:
    settings = RouterSettings(state_dir=tmp_path, threads=3)
    assert "    nbthread 3\n" in render_config(RoutingTable(), settings)
