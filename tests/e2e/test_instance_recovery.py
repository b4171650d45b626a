"""An instance that crashes, is removed behind Baepo's back or that the router's health checks
find down is replaced by the reconciler, and the service's events say so. A push of the same
image to a tracked tag deploys nothing."""

from __future__ import annotations

import json
import secrets
import time

import httpx
import pytest

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.integration


def running_containers(stack: Stack, service: str) -> list[str]:
    """Ids of the service's running containers, as `docker ps` lists them."""
    listed = stack.docker(
        "ps", "--no-trunc", "--filter", f"label=baepo.service={service}", "--format", "{{.ID}}"
    )
    return sorted(listed.stdout.split())


def events(stack: Stack, service: str) -> list[dict[str, str]]:
    return json.loads(stack.cli("services", "events", service, "--json").stdout)  # type: ignore[no-any-return]


def operations(stack: Stack, service: str) -> list[dict[str, object]]:
    return json.loads(stack.cli("services", "ops", service, "--json").stdout)  # type: ignore[no-any-return]


def answers(stack: Stack, host: str, text: str) -> bool:
    try:
        r = stack.https(host, timeout=5)
    except httpx.HTTPError:
        return False
    return r.status_code == 200 and text in r.text


REPLACEMENT_EVENTS = ("crashed", "removed", "unhealthy")


def wait_replaced(stack: Stack, name: str, gone: str, seen: int, timeout: float = 60) -> float:
    """Until a container other than `gone` runs, the URL answers and a crash/replacement event
    is recorded past the `seen` ones; the seconds that took."""
    started = time.monotonic()
    deadline = started + timeout
    state: tuple[list[str], bool, list[dict[str, str]]] = ([], False, [])
    while time.monotonic() < deadline:
        running = running_containers(stack, name)
        serving = answers(stack, f"{name}.localhost", "hello v1")
        recorded = events(stack, name)
        state = (running, serving, recorded)
        new = recorded[: len(recorded) - seen]  # newest first
        if (
            len(running) == 1
            and running[0] != gone
            and serving
            and any(e["kind"] in REPLACEMENT_EVENTS for e in new)
        ):
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"{name} not recovered in {timeout}s (running, serving, events): {state}")


def serving(stack: Stack, prefix: str) -> tuple[str, str]:
    """A new service of hello:1 (HTTP check on /healthz) that serves; its name and container."""
    name = f"{prefix}-{secrets.token_hex(3)}"
    ref = stack.push("baepo-test/hello:1", f"team/{name}:1")
    stack.cli(
        "services", "create", name, "--image", ref, "--health-check-path", "/healthz", "--wait"
    )
    stack.wait_for(f"{name}.localhost", "hello v1")
    [first] = running_containers(stack, name)
    return name, first


def test_a_killed_and_a_removed_instance_are_replaced_and_recorded(stack: Stack) -> None:
    name, first = serving(stack, "heal")
    assert events(stack, name) == []

    stack.docker("kill", first)
    took_kill = wait_replaced(stack, name, first, seen=0)
    [crashed] = events(stack, name)
    assert crashed["kind"] == "crashed", crashed
    assert "exited with code 137" in crashed["message"] and "replacing" in crashed["message"]
    [second] = running_containers(stack, name)
    assert crashed["instance"] != second

    stack.docker("rm", "-f", second)
    took_rm = wait_replaced(stack, name, second, seen=1)
    removed, *older = events(stack, name)
    assert older == [crashed]
    assert removed["kind"] in REPLACEMENT_EVENTS and "replacing" in removed["message"], removed

    # Neither was an operation: the service stayed on its first revision, nothing in flight.
    described = stack.wait_idle(name)
    assert described["status"] == "RUNNING" and described["active_revision"] == 1
    assert [op["kind"] for op in operations(stack, name)] == ["CREATE_SERVICE"]
    print(f"\nreplaced in {took_kill:.1f} s after docker kill, {took_rm:.1f} s after docker rm -f")
    stack.cli("services", "rm", name, "--wait")
    assert running_containers(stack, name) == []


def test_an_instance_haproxy_finds_down_is_replaced(stack: Stack) -> None:
    """The app stops answering its health check while its container runs on: HAProxy's
    checks (App Runner's defaults: every 5 s, down after 5 failures) take it out of the
    route, and Baepo replaces it."""
    name, first = serving(stack, "down")
    stack.docker("exec", first, "rm", "/www/healthz")  # GET /healthz now answers 404
    took = wait_replaced(stack, name, first, seen=0, timeout=90)
    found = events(stack, name)
    assert len(found) == 1, found  # whatever else was recorded, shown if it fails
    [event] = found
    assert event["kind"] == "unhealthy", event
    assert "failed 5 health checks in a row" in event["message"], event
    assert "HTTP GET /healthz" in event["message"] and "replacing" in event["message"], event
    assert running_containers(stack, name) != [first]
    print(f"\nreplaced {took:.1f} s after its health check began to fail")
    stack.cli("services", "rm", name, "--wait")


def test_pushing_the_same_image_to_the_tracked_tag_deploys_nothing(stack: Stack) -> None:
    name = f"same-{secrets.token_hex(3)}"
    ref = stack.push("baepo-test/hello:1", f"team/{name}:live")
    stack.cli(
        "services",
        "create",
        name,
        "--image",
        ref,
        "--health-check-path",
        "/healthz",
        "--auto-deploy",
        "--wait",
    )
    before = operations(stack, name)
    assert [op["kind"] for op in before] == ["CREATE_SERVICE"]

    stack.push("baepo-test/hello:1", f"team/{name}:live")  # same digest again
    # Nothing should happen: watch a few seconds (a push-triggered deploy starts within a
    # reconciler pass) that no operation appears.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        assert operations(stack, name) == before
        time.sleep(0.5)
    assert stack.describe(name)["active_revision"] == 1

    # The same tag with another image does deploy: the check above could have failed.
    stack.push("baepo-test/hello:2", f"team/{name}:live")
    stack.wait_for(f"{name}.localhost", "hello v2")
    assert stack.wait_idle(name)["active_revision"] == 2
    assert [op["kind"] for op in operations(stack, name)] == ["START_DEPLOYMENT", "CREATE_SERVICE"]
    stack.cli("services", "rm", name, "--wait")
