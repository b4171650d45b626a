"""A cutover under load (issue 6, failure 8): once the router has applied a route that adds
the new instance and drains the old one, every request that starts afterwards reaches the new
one, with 8 clients opening a new TLS connection per request."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.router.backends import Backend
from tests.router.conftest import Plane
from tests.router.routes import add_server, drain_server, ensure_service
from tests.router.test_haproxy import wait_until

pytestmark = pytest.mark.integration

CLIENTS = 8
LOAD_LIMIT_S = 60.0


def test_a_cutover_under_load_takes_effect_for_the_next_request(
    plane: Plane, backends: dict[str, Backend]
) -> None:
    host = "app.baepo.test"
    ensure_service(plane.router, "app", [host])
    add_server(plane.router, "app", "old", backends["old"].address)
    ensure_service(plane.router, "other", ["other.baepo.test"])  # a reload: an old worker too
    results: list[tuple[float, str]] = []  # (when the request started, who answered)
    stop = threading.Event()

    def client() -> None:
        deadline = time.monotonic() + LOAD_LIMIT_S
        while not stop.is_set() and time.monotonic() < deadline and len(results) < 50_000:
            started = time.monotonic()
            try:
                with httpx.Client(verify=plane.tls, timeout=10) as c:
                    r = c.get(
                        f"https://127.0.0.1:{plane.settings.https_port}/",
                        headers={"Host": host},
                        extensions={"sni_hostname": host},
                    )
                answer = r.text.split()[0] if r.status_code == 200 else str(r.status_code)
            except httpx.HTTPError as exc:
                answer = repr(exc)
            results.append((started, answer))

    threads = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(results) >= 40, timeout=30)
        add_server(plane.router, "app", "new", backends["new"].address)
        drain_server(plane.router, "app", "old")
        applied = time.monotonic()
        wait_until(lambda: sum(1 for s, _ in results if s > applied) >= 40, timeout=30)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    after = [answer for started, answer in results if started > applied]
    assert set(after) == {"new"}, sorted(set(after))
    assert all(answer in ("old", "new") for _, answer in results)  # none failed
