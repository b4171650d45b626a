"""Bulk misuse by one user costs that user: a script that creates services with a missing
image as fast as it can hits its quota, makes no router reload, does not hold up another user's
service, and Baepo still stops cleanly with the backlog."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from baepo.config import Config
from tests.conftest import BaepoProcess, running

pytestmark = pytest.mark.integration

QUOTA = 50  # the default: the test runs Baepo as a user gets it, with no flags


@pytest.fixture
def baepo(tmp_path: Path) -> Iterator[BaepoProcess]:
    with running(tmp_path / "data") as server:
        yield server


def user_client(server: BaepoProcess, name: str) -> httpx.Client:
    with server.api() as admin:
        assert (
            admin.post(
                "/api/v1/users", json={"name": name, "password": "pw-" + name * 3}
            ).status_code
            == 201
        )
    login = httpx.post(
        f"{server.url}/api/v1/login", json={"username": name, "password": "pw-" + name * 3}
    )
    token = login.json()["token"]
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    )


def loaded_configuration(server: BaepoProcess) -> str:
    """What the running HAProxy loaded (it changes with every reload that adds a backend)."""
    fingerprint = Config(data_dir=server.data_dir).router_dir / "haproxy.cfg.fingerprint"
    return fingerprint.read_text()


def test_a_flood_of_failing_creates_hits_the_quota_and_spares_everyone_else(
    baepo: BaepoProcess,
) -> None:
    missing = f"{baepo.host}/mallory/missing:1"
    before = loaded_configuration(baepo)
    with user_client(baepo, "mallory") as mallory, user_client(baepo, "alice") as alice:

        def create(n: int) -> int:
            body = {"name": f"flood-{n}", "image": missing}
            return mallory.post("/api/v1/services", json=body).status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = Counter(pool.map(create, range(QUOTA + 15)))
        assert statuses == {202: QUOTA, 403: 15}, statuses
        refused = mallory.post("/api/v1/services", json={"name": "one-more", "image": missing})
        assert refused.json()["error"]["code"] == "QUOTA_EXCEEDED"
        # Another user's service goes through its turn while the flood's deploys fail.
        own = f"{baepo.host}/alice/missing:1"
        other = alice.post("/api/v1/services", json={"name": "alices", "image": own})
        assert other.status_code == 202
        operation = other.json()["operation"]["id"]
        deadline = time.monotonic() + 120
        status = ""
        while time.monotonic() < deadline and status not in ("SUCCEEDED", "FAILED"):
            status = alice.get(f"/api/v1/operations/{operation}").json()["status"]
            time.sleep(0.5)
        assert status == "FAILED"  # its image is missing too: it ends, it is not stuck
        # None of those services ever served: the router was never reloaded for them.
        assert loaded_configuration(baepo) == before
        mine = [s["name"] for s in mallory.get("/api/v1/services").json()]
        assert len(mine) == QUOTA
        for name in mine:
            assert mallory.delete(f"/api/v1/services/{name}").status_code == 202
    assert baepo.stop() == 0
    log = baepo.log()
    assert "Application shutdown failed" not in log
    assert "stopped" in log
