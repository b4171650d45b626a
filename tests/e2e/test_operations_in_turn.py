"""Operations wait their turn: a deploy asked for while another runs is queued, and a change
made with --wait waits for the operation in flight instead of failing with a conflict. While a
new instance waits for its check, `--wait` shows what the probe answers."""

from __future__ import annotations

import json
import secrets

import pytest

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.integration


def test_deploys_and_changes_asked_for_during_an_operation_wait_their_turn(stack: Stack) -> None:
    name = f"turns-{secrets.token_hex(2)}"
    v1 = stack.push("baepo-test/hello:1", f"team/{name}:1")
    v2 = stack.push("baepo-test/hello:2", f"team/{name}:2")
    # Each instance starts listening 4 s after it starts: every operation below is still
    # running when the next command asks for its own (a CLI starts in well under that).
    slow = "sh -c 'sleep 4; exec /bin/serve'"
    stack.cli(
        "services", "create", name, "--image", v1, "--health-check-path", "/healthz",
        "--command", slow,
    )  # fmt: skip

    queued = stack.cli("services", "deploy", name, "--image", v2, "--wait")  # create runs
    assert "waiting for operation" in queued.stdout, queued.stdout
    assert "SUCCEEDED" in queued.stdout
    first = json.loads(stack.cli("services", "deploy", name, "--image", v1, "--json").stdout)
    changed = stack.cli("services", "update", name, "--env", "MESSAGE=hi", "--wait")
    assert f"waiting for operation {first['id']} to end" in changed.stdout, changed.stdout
    assert "UPDATE_SERVICE" in changed.stdout and "SUCCEEDED" in changed.stdout
    stack.wait_for(f"{name}.localhost", "message: hi")
    ops = json.loads(stack.cli("services", "ops", name, "--json").stdout)
    assert [op["status"] for op in ops] == ["SUCCEEDED"] * 4, ops
    stack.cli("services", "rm", name, "--wait")


def test_wait_shows_what_the_health_check_answers(stack: Stack) -> None:
    name = f"probe-{secrets.token_hex(2)}"
    v1 = stack.push("baepo-test/hello:1", f"team/{name}:1")
    stack.cli("services", "create", name, "--image", v1, "--wait")
    failed = stack.cli(
        "services", "update", name, "--health-check-path", "/missing", "--wait", check=False
    )
    assert failed.returncode == 1
    assert "health check: GET /missing answered HTTP 404" in failed.stdout, failed.stdout
    assert "of 1 passing" in failed.stdout, failed.stdout
    assert "hello v1" in stack.https(f"{name}.localhost").text
    stack.cli("services", "rm", name, "--wait")
