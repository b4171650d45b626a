"""Thirty create → deploy → delete cycles while wrk keeps 32 connections busy through the
router: every instance starts (no start failure: nothing is published on host ports, so no
host port can collide with the kernel's ephemeral ports that wrk's connections use), every
operation succeeds, and the steady service under load loses no request."""

from __future__ import annotations

import json
import os
import secrets

import pytest

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.integration

# Twenty-four instance starts beside the load, about a minute of CI; the check as first written
# ran fifty cycles (BAEPO_CHURN_CYCLES=50), seven minutes of a 35-minute suite.
CYCLES = int(os.environ.get("BAEPO_CHURN_CYCLES", "8"))


def test_create_deploy_delete_cycles_beside_a_loaded_service_all_start(stack: Stack) -> None:
    steady = f"busy-{secrets.token_hex(2)}"
    v1 = stack.push("baepo-test/hello:1", f"team/{steady}:1")
    v2 = stack.push("baepo-test/hello:2", f"team/{steady}:2")
    stack.cli("services", "create", steady, "--image", v1, "--wait")
    stack.wait_for(f"{steady}.localhost", "hello v1")
    outcomes: list[str] = []
    with stack.load(f"{steady}.localhost", 32, 900) as wrk:
        for n in range(CYCLES):
            name = f"churn-{secrets.token_hex(2)}-{n}"
            for args in (
                ("services", "create", name, "--image", v1, "--wait"),
                ("services", "deploy", name, "--image", v2, "--wait"),
                ("services", "rm", name, "--wait"),
            ):
                done = stack.cli(*args, check=False)
                if done.returncode != 0:
                    outcomes.append(f"{' '.join(args[:3])}: {done.stdout}{done.stderr}")
    output = wrk.output
    print(output)
    assert outcomes == []
    requests, socket_errors, bad = wrk.counts()
    assert requests > 1000, output
    assert (socket_errors, bad) == (0, 0), output
    ops = json.loads(stack.cli("services", "ops", steady, "--json").stdout)
    assert [op["status"] for op in ops] == ["SUCCEEDED"]
    stack.cli("services", "rm", steady, "--wait")
