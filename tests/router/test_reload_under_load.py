"""Reloads under keep-alive load: services appearing and going (each a hitless reload) while
wrk keeps 16 keep-alive connections busy on another service lose no request. Before a reload
closed idle keep-alive connections under clients that were sending on them (wrk counted read
errors); now the old worker answers their next request with `Connection: close` first."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.components import missing
from tests.router.backends import Backend
from tests.router.conftest import Plane, free_port
from tests.router.routes import add_server, ensure_service

pytestmark = pytest.mark.integration

RELOADS = 12


def test_reloads_lose_no_request_of_keep_alive_clients(
    plane: Plane, backends: dict[str, Backend]
) -> None:
    router = plane.router
    ensure_service(router, "steady", ["steady.baepo.test"])
    add_server(router, "steady", "s", backends["s"].address)
    assert plane.get("steady.baepo.test").status_code == 200
    before = router.processes().reloads
    wrk = subprocess.Popen(
        [
            "wrk", "-t2", "-c16", "-d120s", "--timeout", "10s",
            "-H", "Host: steady.baepo.test",
            f"https://127.0.0.1:{plane.settings.https_port}/",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        for n in range(RELOADS // 2):
            ensure_service(router, f"churn{n}", [f"churn{n}.baepo.test"])
            add_server(router, f"churn{n}", "c", backends["c"].address)
            host = f"churn{n}.baepo.test"
            with httpx.Client(verify=plane.tls) as fresh:  # a client per host, as browsers
                answer = fresh.get(
                    f"https://127.0.0.1:{plane.settings.https_port}/",
                    headers={"Host": host},
                    extensions={"sni_hostname": host},
                )
            assert answer.status_code == 200
            router.remove(f"churn{n}")
    finally:
        wrk.send_signal(signal.SIGINT)
        output, _ = wrk.communicate(timeout=60)
    print(output)
    assert router.processes().reloads >= before + RELOADS
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    assert requests > 100, output
    assert "Socket errors" not in output, output
    assert "Non-2xx" not in output, output


def test_after_a_reload_an_app_that_closes_its_connections_loses_no_request(
    plane: Plane, tmp_path: Path
) -> None:
    """busybox httpd (the test images' server) closes each connection after its answer: the
    servers a reload renders into the configuration must not keep its closed connections for
    reuse (HAProxy then cut about one client connection in five without an answer)."""
    busybox = shutil.which("busybox")
    if busybox is None:
        missing("busybox is not installed (apt install busybox-static)")
    # The hello image's app: a CGI script answering `/` with a Content-Length.
    shutil.copytree(Path(__file__).parents[1] / "images" / "hello" / "www", tmp_path / "www")
    (tmp_path / "www" / "cgi-bin" / "index.cgi").chmod(0o755)
    port = free_port()
    httpd = subprocess.Popen(
        [busybox, "httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", tmp_path / "www"]
    )
    try:
        router = plane.router
        ensure_service(router, "app", ["app.baepo.test"])
        add_server(router, "app", "b", f"127.0.0.1:{port}")
        ensure_service(router, "other", ["other.baepo.test"])  # a reload: b is now static
        assert plane.get("app.baepo.test").text.startswith("hello v")
        wrk = subprocess.run(
            [
                "wrk", "-t2", "-c16", "-d3s", "--timeout", "10s",
                "-H", "Host: app.baepo.test",
                f"https://127.0.0.1:{plane.settings.https_port}/",
            ],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        httpd.terminate()
        httpd.wait(timeout=10)
    print(wrk.stdout)
    requests = int(re.search(r"(\d+) requests in", wrk.stdout).group(1))  # type: ignore[union-attr]
    assert requests > 100, wrk.stdout
    assert "Socket errors" not in wrk.stdout, wrk.stdout
    assert "Non-2xx" not in wrk.stdout, wrk.stdout
