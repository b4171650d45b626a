"""Zero-downtime deploys under continuous load: wrk on loopback, 10 deploys, 0 failures.

wrk drives HTTPS requests through the router for the whole run; the test deploys 10 times
in a row (alternating two images), then deploys an image whose health check never passes.
Every one of wrk's requests must succeed: no connection errors, no non-2xx answers.
"""

from __future__ import annotations

import secrets

import pytest

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.integration

DEPLOYS = 10


def test_ten_deploys_and_a_failed_one_under_load_lose_no_request(stack: Stack) -> None:
    name = f"steady-{secrets.token_hex(2)}"
    images = [stack.push(f"baepo-test/hello:{v}", f"team/{name}:v{v}") for v in (1, 2)]
    broken = stack.push("baepo-test/broken:1", f"team/{name}:broken")
    stack.cli(
        "services",
        "create",
        name,
        "--image",
        images[0],
        "--health-check-path",
        "/healthz",
        "--no-auto-deploy",
        "--wait",
    )
    stack.wait_for(f"{name}.localhost", "hello v1")

    with stack.load(f"{name}.localhost", 8, 600) as wrk:
        for n in range(DEPLOYS):
            stack.cli("services", "deploy", name, "--image", images[(n + 1) % 2], "--wait")
        failed = stack.cli("services", "deploy", name, "--image", broken, "--wait", check=False)
        assert failed.returncode == 1 and "FAILED" in failed.stdout + failed.stderr
    output = wrk.output
    requests, socket_errors, bad = wrk.counts()
    print(output)
    assert requests > 2000, output
    assert (socket_errors, bad) == (0, 0), output
    described = stack.wait_idle(name)
    assert described["active_revision"] == DEPLOYS + 1
    assert "hello v1" in stack.https(f"{name}.localhost").text  # 10 deploys: back on v1
    stack.cli("services", "rm", name, "--wait")
