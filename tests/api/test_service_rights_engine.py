"""Service rights against a real Baepo and a real engine: the engine pulls from Baepo's registry
with Baepo's own credentials, so the API must refuse what the user may not pull themselves."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.clients import Docker
from tests.conftest import BaepoProcess

pytestmark = pytest.mark.integration


@pytest.fixture
def baepo(
    tmp_path: Path, docker_host: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[BaepoProcess]:
    monkeypatch.setenv("DOCKER_HOST", docker_host)
    server = BaepoProcess(tmp_path / "data")
    server.start()
    yield server
    server.stop()
    server.stop_data_plane()


def wait(client: httpx.Client, operation: str, timeout: float = 120) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        op: dict[str, object] = client.get(f"/api/v1/operations/{operation}").json()
        if op["status"] in ("SUCCEEDED", "FAILED"):
            return op
        time.sleep(0.2)
    raise AssertionError(f"operation {operation} did not end in {timeout}s")


def test_a_user_cannot_run_another_users_private_image(
    baepo: BaepoProcess, docker_host: str, tmp_path: Path
) -> None:
    with baepo.api() as admin:
        for user in ("alice", "bob"):
            made = admin.post("/api/v1/users", json={"name": user, "password": f"{user}-pass-1"})
            assert made.status_code == 201, made.text
    ref = f"{baepo.host}/alice/private:1"
    alice_docker = Docker(docker_host, tmp_path / "alice-docker")
    alice_docker("login", baepo.host, "-u", "alice", "--password-stdin", input="alice-pass-1")
    alice_docker("tag", "baepo-test/hello:1", ref)
    alice_docker("push", ref)
    bob_docker = Docker(docker_host, tmp_path / "bob-docker")
    bob_docker("login", baepo.host, "-u", "bob", "--password-stdin", input="bob-pass-1")
    assert bob_docker("pull", ref, check=False).returncode != 0  # the registry says no

    body = {"name": "stolen", "image": ref, "command": "env"}
    with httpx.Client(base_url=baepo.url, auth=("bob", "bob-pass-1"), timeout=30) as bob:
        refused = bob.post("/api/v1/services", json=body)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "IMAGE_FORBIDDEN"
        probe = bob.post("/api/v1/services", json={**body, "image": "127.0.0.1:22/x:1"})
        assert probe.status_code == 403 and "this machine" in probe.json()["error"]["message"]
        assert bob.get("/api/v1/services").json() == []
    with baepo.api() as admin:
        assert "stolen" not in [s["name"] for s in admin.get("/api/v1/services").json()]

    # alice may: the engine pulls her image with Baepo's credentials and runs it.
    mine = {"name": "mine", "image": ref, "health_check": {"protocol": "http", "path": "/healthz"}}
    with httpx.Client(base_url=baepo.url, auth=("alice", "alice-pass-1"), timeout=30) as alice:
        created = alice.post("/api/v1/services", json=mine)
        assert created.status_code == 202, created.text
        op = wait(alice, created.json()["operation"]["id"])
        assert op["status"] == "SUCCEEDED", op
        assert alice.get("/api/v1/services/mine").json()["owner"] == "alice"
    with httpx.Client(base_url=baepo.url, auth=("bob", "bob-pass-1"), timeout=30) as bob:
        # Nor can bob read alice's secrets by changing her service's command.
        change = bob.patch("/api/v1/services/mine", json={"command": "env; exit 1"})
        assert change.status_code == 404 and change.json()["error"]["code"] == "SERVICE_NOT_FOUND"
        assert bob.get(f"/api/v1/operations/{op['id']}").status_code == 404
    with baepo.api() as admin:
        gone = admin.delete("/api/v1/services/mine")
        assert gone.status_code == 202
        wait(admin, gone.json()["id"])
