"""kill -9 of Baepo in the middle of a deploy, then a restart: it adopts what runs and
converges. No orphaned or duplicated containers, the service keeps serving, and the
operation ends SUCCEEDED or FAILED."""

from __future__ import annotations

import json
import os
import secrets
import time

import pytest

from baepo.runtime import DockerEngine
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.integration


def containers(service: str) -> list[str]:
    engine = DockerEngine(os.environ["DOCKER_HOST"])
    try:
        return sorted(
            i.labels.get("baepo.revision", "?")
            for i in engine.list({"baepo.service": service})
            if i.running
        )
    finally:
        engine.close()


@pytest.mark.parametrize("delay", [0.0, 0.3, 0.8])
def test_kill_9_mid_deploy_converges(stack: Stack, delay: float) -> None:
    name = f"crash-{secrets.token_hex(2)}"
    v1 = stack.push("baepo-test/hello:1", f"team/{name}:1")
    v2 = stack.push("baepo-test/hello:2", f"team/{name}:2")
    stack.cli(
        "services", "create", name, "--image", v1, "--health-check-path", "/healthz", "--wait"
    )
    op = json.loads(stack.cli("services", "deploy", name, "--image", v2, "--json").stdout)
    time.sleep(delay)  # somewhere in start → health → route → drain → stop
    stack.baepo.kill()
    # The data plane kept serving while the control plane was dead.
    assert "hello v" in stack.https(f"{name}.localhost").text
    stack.baepo.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        current = json.loads(stack.cli("services", "ops", name, op["id"], "--json").stdout)
        if current["status"] in ("SUCCEEDED", "FAILED"):
            break
        time.sleep(0.2)
    assert current["status"] in ("SUCCEEDED", "FAILED"), current
    described = stack.wait_idle(name)
    assert described["status"] == "RUNNING"
    expected = "hello v2" if current["status"] == "SUCCEEDED" else "hello v1"
    stack.wait_for(f"{name}.localhost", expected)
    # Exactly one instance of the serving revision, nothing left of the other.
    deadline = time.monotonic() + 30
    while containers(name) != [str(described["active_revision"])]:
        assert time.monotonic() < deadline, containers(name)
        time.sleep(0.2)
    stack.cli("services", "rm", name, "--wait")
    assert containers(name) == []


def test_kill_9_right_after_a_push_deploys_it_once_after_the_restart(stack: Stack) -> None:
    name = f"pushed-{secrets.token_hex(2)}"
    v1 = stack.push("baepo-test/hello:1", f"team/{name}:live")
    stack.cli(
        "services", "create", name, "--image", v1, "--health-check-path", "/healthz", "--wait"
    )
    stack.push("baepo-test/hello:2", f"team/{name}:live")  # the registry has it durably
    stack.baepo.kill()  # maybe before the reconciler saw it, maybe after
    stack.baepo.start()
    try:
        stack.wait_for(f"{name}.localhost", "hello v2", timeout=120)
    except AssertionError as exc:
        ops = stack.cli("services", "ops", name, "--json", check=False).stdout
        log = stack.baepo.log()[-4000:]
        raise AssertionError(f"{exc}\noperations: {ops}\nlog:\n{log}") from exc
    described = stack.wait_idle(name)
    ops = json.loads(stack.cli("services", "ops", name, "--json").stdout)
    deploys = [op for op in ops if op["kind"] == "START_DEPLOYMENT"]
    assert [op["status"] for op in deploys] == ["SUCCEEDED"], ops
    assert described["active_revision"] == 2
    stack.cli("services", "rm", name, "--wait")
