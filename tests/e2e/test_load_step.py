"""Issue 9's load step, through the real router with a client that is not ours (wrk): a service
with max concurrency 50 and otherwise the defaults a user gets goes from 5 to 300 concurrent
clients. The autoscaler, fed by HAProxy's stats, starts instances; requests beyond each
instance's 50 wait in HAProxy's queue instead of failing; not one request fails; when the load
stops the service shrinks back to its minimum."""

from __future__ import annotations

import secrets
import time

import pytest

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.integration

CALM_CLIENTS, BUSY_CLIENTS = 5, 300


def ready(stack: Stack, name: str) -> int:
    instances = stack.describe(name)["instances"]
    assert isinstance(instances, list)
    return sum(1 for i in instances if i["state"] == "running" and i["health"] == "healthy")


def instances(stack: Stack, name: str) -> int:
    found = stack.describe(name)["instances"]
    assert isinstance(found, list)
    return len(found)


def test_a_load_step_adds_instances_loses_no_request_and_shrinks_back(stack: Stack) -> None:
    name = f"step-{secrets.token_hex(2)}"
    host = f"{name}.localhost"
    image = stack.push("baepo-test/hello:1", f"team/{name}:1")
    stack.cli(
        "services", "create", name, "--image", image, "--max-concurrency", "50",
        "--max-instances", "4", "--wait",
    )  # fmt: skip
    stack.wait_for(host, "hello v1")
    with stack.load(host, CALM_CLIENTS, 300) as calm:
        # The calm load alone wants one instance: 5 in flight is far below 70 % of 50.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            assert instances(stack, name) == 1
            time.sleep(0.5)
        with stack.load(host, BUSY_CLIENTS - CALM_CLIENTS, 240) as busy:
            deadline = time.monotonic() + 90
            most = 1
            while time.monotonic() < deadline and most < 2:
                most = max(most, ready(stack, name))
                time.sleep(0.2)
            assert most >= 2, stack.describe(name)
            # Keep the step on a little longer, so the new instances carry part of it.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                most = max(most, ready(stack, name))
                time.sleep(0.5)
    for load in (calm, busy):
        requests, socket_errors, bad = load.counts()
        assert requests > 0, load.output
        assert (socket_errors, bad) == (0, 0), load.output
    events = stack.cli("services", "logs", name, "--events", "-n", "200").stdout
    assert "scaling:" in events, events
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and instances(stack, name) > 1:
        time.sleep(1)
    assert instances(stack, name) == 1, stack.describe(name)
    stack.cli("services", "rm", name, "--wait")
