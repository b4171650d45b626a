"""Scale to zero end to end (issue 9's check): a real Baepo, its HAProxy with the activator, the
sampler, a real engine. With min 0, an idle service runs no container; the next request is held
while one instance starts, then served; fifty requests arriving together at zero are all served
by one instance started for them."""

from __future__ import annotations

import secrets
import threading
import time
from datetime import UTC, datetime

import httpx
import pytest

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.integration

IDLE_LIMIT_S = 120  # idle period 30 s + a decision or two + the stop; generous on 2 cores
SIMULTANEOUS = 50


def containers(stack: Stack, name: str) -> list[str]:
    """Every container of the service the engine has, running or not."""
    listed = stack.docker(
        "ps", "-a", "-q", "--filter", f"label=baepo.service={name}", "--no-trunc"
    ).stdout
    return listed.split()


def wait_for_zero(stack: Stack, name: str) -> None:
    deadline = time.monotonic() + IDLE_LIMIT_S
    while containers(stack, name):
        assert time.monotonic() < deadline, f"{name} still runs {containers(stack, name)}"
        time.sleep(1)


def starts_between(stack: Stack, name: str, since: datetime, until: datetime) -> list[str]:
    """The containers of the service the engine started in [since, until] (its event log)."""
    events = stack.docker(
        "events",
        "--since", since.isoformat(), "--until", until.isoformat(),
        "--filter", "event=start", "--filter", f"label=baepo.service={name}",
        "--format", "{{.ID}}",
    ).stdout  # fmt: skip
    return events.split()


def test_an_idle_service_goes_to_zero_and_the_next_requests_start_one_instance(
    stack: Stack,
) -> None:
    name = f"zero-{secrets.token_hex(2)}"
    image = stack.push("baepo-test/hello:1", f"team/{name}:1")
    stack.cli(
        "services", "create", name, "--image", image, "--min-instances", "0", "--wait"
    )  # the deploy proves the revision with one instance, which then idles away
    host = f"{name}.localhost"
    assert containers(stack, name), "a deploy starts an instance even at min 0"

    wait_for_zero(stack, name)
    first = stack.https(host, timeout=70)
    assert first.status_code == 200 and "hello v1" in first.text
    assert len(containers(stack, name)) == 1

    wait_for_zero(stack, name)
    since = datetime.now(UTC)
    answers: list[str] = []
    lock = threading.Lock()
    go = threading.Barrier(SIMULTANEOUS)

    def request() -> None:
        with stack.client(host, timeout=70) as c:
            go.wait(30)
            try:
                r = c.get("/")
                answer = str(r.status_code) if "hello v1" in r.text else "wrong body"
            except httpx.HTTPError as exc:
                answer = type(exc).__name__
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=request) for _ in range(SIMULTANEOUS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    until = datetime.now(UTC)
    assert answers == ["200"] * SIMULTANEOUS, answers
    started = starts_between(stack, name, since, until)
    assert len(started) == 1, f"{len(started)} instances started for {SIMULTANEOUS} requests"
    assert len(containers(stack, name)) == 1
    stack.cli("services", "rm", name, "--wait")
