"""A shared autoscaling configuration end to end: a real Baepo, engine and HAProxy. Its max
concurrency becomes each server's `maxconn` in HAProxy, and it cannot be deleted while the
service uses it."""

from __future__ import annotations

import csv
import secrets
import socket
import time

import pytest

from baepo.config import Config
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.integration


def server_limits(stack: Stack, service: str) -> dict[str, int]:
    """Server → its maxconn (`slim`), for the service's instances, from HAProxy's stats."""
    path = Config(data_dir=stack.baepo.data_dir).router_run_dir / "haproxy.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(str(path))
        sock.sendall(b"show stat\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    lines = b"".join(chunks).decode().lstrip("# ").splitlines()
    return {
        row["svname"]: int(row["slim"] or 0)
        for row in csv.DictReader(line for line in lines if line)
        if row["svname"].startswith(f"{service}-")
    }


def test_a_shared_configuration_is_the_maxconn_and_cannot_go_while_used(stack: Stack) -> None:
    conf, name = f"conf-{secrets.token_hex(2)}", f"shared-{secrets.token_hex(2)}"
    sizes = ("--min-size", "2", "--max-size", "3", "--max-concurrency", "7")
    stack.cli("autoscaling", "create", conf, *sizes)
    ref = stack.push("baepo-test/hello:1", f"team/{name}:1")
    stack.cli(
        *("services", "create", name, "--image", ref, "--port", "8080"),
        *("--autoscaling", conf, "--wait"),
    )
    described = stack.describe(name)
    config = described["config"]
    assert isinstance(config, dict)
    assert config["autoscaling_configuration"] == f"{conf}:1"
    deadline, limits = time.monotonic() + 60, {}
    while time.monotonic() < deadline:  # both instances routed, each with maxconn 7
        limits = server_limits(stack, name)
        if len(limits) == 2 and set(limits.values()) == {7}:
            break
        time.sleep(0.2)
    assert len(limits) == 2 and set(limits.values()) == {7}, limits

    refused = stack.cli("autoscaling", "delete", conf, check=False)
    assert refused.returncode == 1
    assert f"{conf}:1 is used by {name}" in refused.stderr
    with stack.baepo.api() as api:
        answer = api.delete(f"/api/v1/autoscaling-configurations/{conf}/1")
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "AUTOSCALING_CONFIGURATION_IN_USE"
    assert server_limits(stack, name)  # still serving, unchanged

    stack.cli("services", "rm", name, "--wait")
    gone = stack.cli("autoscaling", "delete", conf)
    assert f"deleted {conf}:1" in gone.stdout
