"""Reloads under keep-alive load: services appearing and going (each a hitless reload) while
wrk keeps 16 keep-alive connections busy on another service lose no request. Before a reload
closed idle keep-alive connections under clients that were sending on them (wrk counted read
errors); now the old worker answers their next request with `Connection: close` first."""

from __future__ import annotations

import re
import signal
import subprocess

import httpx
import pytest

from tests.router.backends import Backend
from tests.router.conftest import Plane

pytestmark = pytest.mark.integration

RELOADS = 12


def test_reloads_lose_no_request_of_keep_alive_clients(
    plane: Plane, backends: dict[str, Backend]
) -> None:
    router = plane.router
    router.ensure_service("steady", ["steady.baepo.test"])
    router.add_server("steady", "s", backends["s"].address)
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
            router.ensure_service(f"churn{n}", [f"churn{n}.baepo.test"])
            router.add_server(f"churn{n}", "c", backends["c"].address)
            host = f"churn{n}.baepo.test"
            with httpx.Client(verify=plane.tls) as fresh:  # a client per host, as browsers
                answer = fresh.get(
                    f"https://127.0.0.1:{plane.settings.https_port}/",
                    headers={"Host": host},
                    extensions={"sni_hostname": host},
                )
            assert answer.status_code == 200
            router.remove_service(f"churn{n}")
    finally:
        wrk.send_signal(signal.SIGINT)
        output, _ = wrk.communicate(timeout=60)
    print(output)
    assert router.processes().reloads >= before + RELOADS
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    assert requests > 100, output
    assert "Socket errors" not in output, output
    assert "Non-2xx" not in output, output
