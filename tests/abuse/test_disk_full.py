"""A full disk is an error the client can read, and nothing is left half-written: Baepo on a
64 MB data directory (a tmpfs the test mounts), a 100 MB push into it, then the space freed
through Baepo itself."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.backends import on_sqlite_fs_only
from tests.components import missing
from tests.conftest import ADMIN_PASSWORD, BaepoProcess, running

pytestmark = [pytest.mark.integration, on_sqlite_fs_only]  # on S3 the blobs are elsewhere

MB = 1024 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        missing("mounting a small tmpfs needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def cramped(small_disk: Path) -> Iterator[BaepoProcess]:
    with running(small_disk / "data") as server:
        yield server


def chunks(total: int, size: int = MB) -> Iterator[bytes]:
    block = os.urandom(size)
    for _ in range(total // size):
        yield block


def test_a_push_bigger_than_the_disk_gets_an_error_and_frees_its_space(
    cramped: BaepoProcess, small_disk: Path
) -> None:
    uploads = cramped.data_dir / "registry" / "uploads"
    with httpx.Client(base_url=cramped.url, auth=cramped.admin, timeout=120) as client:
        started = client.post("/v2/team/big/blobs/uploads/")
        assert started.status_code == 202
        location = started.headers["location"]
        pushed = client.patch(
            location,
            content=chunks(100 * MB),
            headers={"Content-Type": "application/octet-stream"},
        )
        assert pushed.status_code == 503, pushed.text
        error = pushed.json()["errors"][0]
        assert error["code"] == "UNAVAILABLE" and "space" in error["message"], error
        # Nothing half-written: the session is back to where the chunk started.
        assert [p.stat().st_size for p in uploads.iterdir()] == [0]
        assert client.get(location).headers["range"] == "0-0"
        assert client.delete(location).status_code == 204
        assert list(uploads.iterdir()) == []
        # The rest of Baepo answers as before.
        login = client.post("/api/v1/login", json={"username": "admin", "password": ADMIN_PASSWORD})
        assert login.status_code == 200, login.text


def test_with_the_disk_full_every_answer_is_structured_and_cancel_frees_space(
    cramped: BaepoProcess, small_disk: Path
) -> None:
    with httpx.Client(base_url=cramped.url, auth=cramped.admin, timeout=120) as client:
        started = client.post("/v2/team/big/blobs/uploads/")
        location = started.headers["location"]
        assert client.patch(location, content=os.urandom(4 * MB)).status_code == 202
        filler = small_disk / "filler"
        subprocess.run(
            ["dd", "if=/dev/zero", f"of={filler}", "bs=1M", "count=100"],
            capture_output=True,
            check=False,
        )
        try:
            answers = {
                "login": client.post(
                    "/api/v1/login", json={"username": "admin", "password": ADMIN_PASSWORD}
                ),
                "users": client.post(
                    "/api/v1/users", json={"name": "newcomer", "password": "a-long-password"}
                ),
                "upload": client.post("/v2/team/other/blobs/uploads/"),
            }
            for what, answer in answers.items():
                assert answer.headers["content-type"].startswith("application/json"), (
                    what,
                    answer.status_code,
                    answer.text,
                )
                assert answer.status_code in (200, 201, 202, 503), (what, answer.text)
            # No session file without a row was left by the refused start.
            names = {p.name for p in (cramped.data_dir / "registry" / "uploads").iterdir()}
            assert names == {started.headers["docker-upload-uuid"]}
            # Cancelling frees its bytes even though the database may not write a page.
            client.delete(location)
            assert names - {p.name for p in (cramped.data_dir / "registry" / "uploads").iterdir()}
        finally:
            filler.unlink(missing_ok=True)
        assert client.get("/v2/").status_code == 200
