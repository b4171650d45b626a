"""Abandoned blob uploads do not pile up: a real `baepo up` removes idle sessions on its own,
their files and their rows together, without anyone running gc."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.backends import BACKENDS
from tests.conftest import BaepoProcess, running

pytestmark = pytest.mark.integration


@pytest.fixture
def short_lived(tmp_path: Path) -> Iterator[BaepoProcess]:
    with running(tmp_path / "data", "--upload-ttl", "2") as server:
        yield server


def test_abandoned_uploads_expire_files_and_rows(short_lived: BaepoProcess) -> None:
    locations = []
    with httpx.Client(base_url=short_lived.url, auth=short_lived.admin, timeout=10) as client:
        for n in range(20):
            started = client.post("/v2/team/abandoned/blobs/uploads/")
            assert started.status_code == 202
            patched = client.patch(started.headers["location"], content=b"x" * (n + 1) * 1000)
            assert patched.status_code == 202
            locations.append(started.headers["location"])
        assert len(BACKENDS.stored_uploads(short_lived.data_dir)) == 20
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and BACKENDS.stored_uploads(short_lived.data_dir):
            time.sleep(0.5)
        assert BACKENDS.stored_uploads(short_lived.data_dir) == set()
        assert all(client.get(loc).status_code == 404 for loc in locations)
    engine = sa.create_engine(BACKENDS.database_url(short_lived.data_dir))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM registry_uploads")).scalar() == 0
    engine.dispose()
    assert "expired" in short_lived.log()
