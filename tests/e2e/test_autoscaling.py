"""Autoscaling end to end: a real Baepo samples its real HAProxy once a second, so a service
under more concurrent requests than its instances take grows (every request still answered),
and shrinks back to its minimum once the load is gone."""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter

import httpx
import pytest

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.integration

# The hello image with a CGI that answers after 1 s: 20 clients keep 20 requests in flight.
SLOW = (
    'sh -c \'echo "#!/bin/sh" > /www/cgi-bin/slow.cgi'
    ' && echo "sleep 1; echo Content-Type: text/plain; echo; echo slow" >> /www/cgi-bin/slow.cgi'
    " && chmod 755 /www/cgi-bin/slow.cgi && exec /bin/serve'"
)
CLIENTS = 20
LOAD_LIMIT_S = 120  # the load ends by then whatever happens


def instances(stack: Stack, name: str) -> int:
    return len(stack.describe(name)["instances"])  # type: ignore[arg-type]


class SlowLoad:
    """CLIENTS threads, each asking for /cgi-bin/slow.cgi in turn until `stop()` (or the
    limit): the answers by status, and the failures by kind."""

    def __init__(self, stack: Stack, host: str) -> None:
        self.stack, self.host = stack, host
        self.answers: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.client) for _ in range(CLIENTS)]

    def client(self) -> None:
        deadline = time.monotonic() + LOAD_LIMIT_S
        with self.stack.client(self.host, timeout=90) as c:
            while not self.stopping.is_set() and time.monotonic() < deadline:
                try:
                    r = c.get("/cgi-bin/slow.cgi")
                    answer = str(r.status_code) if r.text.strip() == "slow" else "wrong body"
                except httpx.HTTPError as exc:
                    answer = type(exc).__name__
                with self.lock:
                    self.answers[answer] += 1

    def __enter__(self) -> SlowLoad:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        for t in self.threads:
            t.join(100)


def test_concurrent_requests_grow_the_service_and_their_end_shrinks_it(stack: Stack) -> None:
    name = f"scaled-{secrets.token_hex(2)}"
    image = stack.push("baepo-test/hello:1", f"team/{name}:1")
    stack.cli(
        "services", "create", name, "--image", image, "--command", SLOW,
        "--min-instances", "1", "--max-instances", "3", "--max-concurrency", "2", "--wait",
    )  # fmt: skip
    host = f"{name}.localhost"
    assert stack.https(host, "/cgi-bin/slow.cgi").text.strip() == "slow"
    assert instances(stack, name) == 1

    with SlowLoad(stack, host) as load:
        # 20 in flight over a target of 1.4 per instance: the maximum, 3 (each routed once
        # healthy). Deadline: the 60 s stable window is not needed, the 6 s panic window is.
        deadline = time.monotonic() + 60
        grown = 1
        while grown < 3 and time.monotonic() < deadline:
            grown = instances(stack, name)
            time.sleep(0.5)
        assert grown > 1, f"still {grown} instance under {CLIENTS} slow clients"
        # The new instances serve: some requests more go through them before the load ends.
        served = sum(load.answers.values())
        while sum(load.answers.values()) < served + 3 * CLIENTS and time.monotonic() < deadline:
            time.sleep(0.2)
    assert set(load.answers) == {"200"}, load.answers
    assert load.answers["200"] >= CLIENTS

    # Idle: after the scale-down delay (30 s) and the stable window (60 s), back to the minimum.
    deadline = time.monotonic() + 240
    count = instances(stack, name)
    while count > 1 and time.monotonic() < deadline:
        time.sleep(2)
        count = instances(stack, name)
    assert count == 1, f"still {count} instances after the load ended"
    assert stack.https(host, "/cgi-bin/slow.cgi").text.strip() == "slow"
    stack.cli("services", "rm", name, "--wait")
