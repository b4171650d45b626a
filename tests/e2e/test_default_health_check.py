"""The default health check (TCP, no path) reaches the app itself, under load.

An image whose app listens on 9999, deployed over a healthy revision of a service that says
8080, with no health check path: the check connects to the instance's own address on its
service's network, where nothing listens on 8080, so the revision never gets healthy, the
operation fails, and the old revision keeps serving. wrk drives HTTPS through the router the
whole time with a new connection per request (`Connection: close`, 8 clients): not one
request may fail.
"""

from __future__ import annotations

import secrets

import pytest

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.integration


def test_an_app_on_the_wrong_port_fails_its_deploy_and_loses_no_request(stack: Stack) -> None:
    name = f"port-{secrets.token_hex(2)}"
    good = stack.push("baepo-test/hello:1", f"team/{name}:good")
    wrong = stack.push("baepo-test/wrong-port:1", f"team/{name}:wrong")
    stack.cli("services", "create", name, "--image", good, "--port", "8080", "--wait")
    assert stack.describe(name)["config"]["health_check"]["protocol"] == "tcp"  # type: ignore[index]
    stack.wait_for(f"{name}.localhost", "hello v1")

    with stack.load(f"{name}.localhost", 8, 120, ("Connection: close",)) as wrk:
        failed = stack.cli("services", "deploy", name, "--image", wrong, "--wait", check=False)
    output = wrk.output
    print(output)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "FAILED" in failed.stdout + failed.stderr
    assert "did not pass its health check (TCP" in failed.stdout + failed.stderr
    requests, socket_errors, bad = wrk.counts()
    assert requests > 100, output
    assert (socket_errors, bad) == (0, 0), output
    described = stack.wait_idle(name)
    assert described["active_revision"] == 1
    assert "hello v1" in stack.https(f"{name}.localhost").text
    stack.cli("services", "rm", name, "--wait")
