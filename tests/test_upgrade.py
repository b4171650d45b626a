"""Upgrades: a database written by the previous tagged version (v0.1.0, tests/fixtures/v0.1.0:
what it holds and how it was made) migrates when the current Baepo starts on it, and what it
held is still there: users and their passwords, API tokens and their limits, repositories,
autoscaling configurations, services with their owners, revisions, settings and states."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from baepo.store import revision_of
from baepo.store.migrations import head_revision
from tests.backends import on_sqlite_fs_only
from tests.conftest import running

pytestmark = [pytest.mark.integration, on_sqlite_fs_only]  # v0.1.0 kept its state in baepo.db

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "v0.1.0"
V0_1_0_REVISION = "cf5e96ab67d6"
LAPTOP = "bp_c20eca8c_bbaOU01HJdtcVzQYHX40k7kMSS6b0Qu8NVSwvRgFVuU"
CI = "bp_24aee264_mAZjo9bP_ulfvXp9WViH8eENjvYZisLmLe2iy2vZlms"


def bearer(url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_a_v0_1_0_database_migrates_on_start_and_keeps_what_it_held(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    shutil.copyfile(FIXTURE / "baepo.db", data / "baepo.db")
    assert revision_of(data / "baepo.db") == V0_1_0_REVISION
    with running(data) as baepo:
        assert revision_of(data / "baepo.db") == head_revision() != V0_1_0_REVISION

        signed_in = httpx.post(
            f"{baepo.url}/api/v1/login",
            json={"username": "alice", "password": "alice-password"},
            timeout=30,
        )
        assert signed_in.status_code == 200, signed_in.text
        with bearer(baepo.url, LAPTOP) as alice:
            assert alice.get("/api/v1/whoami").json()["name"] == "alice"
            listed = alice.get("/api/v1/tokens")
            assert listed.status_code == 200, listed.text
            tokens = {t["name"]: t for t in listed.json()}
            assert {"laptop", "ci"} <= set(tokens)
            assert tokens["ci"]["repositories"] == ["alice/tiny"]
            assert tokens["ci"]["services"] == ["tiny"]
            assert {s["name"] for s in alice.get("/api/v1/services").json()} == {"hello", "tiny"}
        with bearer(baepo.url, CI) as ci:
            assert ci.get("/api/v1/services/tiny").status_code == 200
            assert ci.get("/api/v1/services/hello").status_code in (403, 404)

        with baepo.api() as admin:
            hello = admin.get("/api/v1/services/hello").json()
            tiny = admin.get("/api/v1/services/tiny").json()
            repositories = {r["name"] for r in admin.get("/api/v1/registry/repositories").json()}
            small = admin.get("/api/v1/autoscaling-configurations/small").json()
    assert (hello["owner"], hello["status"], hello["active_revision"]) == ("alice", "PAUSED", 1)
    assert hello["config"]["env"] == {"GREETING": "hi"}
    assert hello["config"]["health_check"]["path"] == "/healthz"
    assert (tiny["owner"], tiny["status"]) == ("alice", "CREATE_FAILED")
    assert tiny["config"]["autoscaling_configuration"] == "small:1"
    assert repositories >= {"alice/hello", "alice/tiny"}
    assert (small["min_size"], small["max_size"], small["max_concurrency"]) == (0, 2, 10)
