"""Backup while Baepo serves and is written to; restore onto a "fresh machine"; it comes back.

The first Baepo gets a user, her API token, a pushed image of its own (a layer no other image
has) and a service answering at its URL. `baepo backup` runs while API tokens are being
created. Then the machine is "lost": Baepo stops, its router and containers are removed, and
the image is deleted from the engine. `baepo restore` into an empty data directory and `baepo
up` on it (same --port: image references name the registry's address): her old token still
signs in, the image pulls by digest (every blob checked by skopeo), and the service converges
on its own, pulling its image from the restored registry, and answers at its URL.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.backends import on_sqlite_fs_only
from tests.clients import skopeo
from tests.conftest import BaepoProcess
from tests.e2e.conftest import Stack, open_stack

pytestmark = pytest.mark.integration

WRITES = 200


def baepo_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "baepo", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "200"},
    )


@on_sqlite_fs_only  # SQLite and blob files; on PostgreSQL and S3: tests/e2e/test_postgres.py
def test_a_backup_taken_while_baepo_serves_restores_users_images_and_services(
    tmp_path: Path,
) -> None:
    name = f"kept-{secrets.token_hex(2)}"
    archive = tmp_path / "baepo-backup.tar.gz"
    (tmp_path / "a").mkdir()
    with open_stack(tmp_path / "a", "--deploy-timeout", "60") as stack:
        port = stack.baepo.port
        with stack.baepo.api() as admin:
            admin.post(
                "/api/v1/users", json={"name": "alice", "password": "alice-password"}
            ).raise_for_status()
        with httpx.Client(base_url=stack.baepo.url, auth=("alice", "alice-password")) as alice:
            made = alice.post("/api/v1/tokens", json={"name": "laptop"})
            made.raise_for_status()
            token = made.json()["token"]

        # An image of its own: the engine must pull this layer from the restored registry.
        context = tmp_path / "image"
        context.mkdir()
        (context / "Dockerfile").write_text(
            f"FROM baepo-test/hello:1\nRUN echo {secrets.token_hex(16)} > /unique\n"
        )
        local = f"baepo-test/backup-{name}:1"
        stack.docker("build", "-q", "-t", local, str(context))
        ref = stack.push(local, f"alice/{name}:1")
        digest = json.loads(stack.cli("registry", "tags", f"alice/{name}", "--json").stdout)[0][
            "digest"
        ]
        stack.cli(
            *("services", "create", name, "--image", ref, "--port", "8080"),
            *("--health-check-path", "/healthz", "--wait"),
        )
        stack.wait_for(f"{name}.localhost", "hello v1")

        # Writes all through the backup: API tokens made one after the other.
        stop = threading.Event()
        written: list[str] = []

        def write() -> None:
            with stack.baepo.api() as api:
                for n in range(WRITES):
                    if stop.is_set():
                        return
                    api.post("/api/v1/tokens", json={"name": f"during-{n}"}).raise_for_status()
                    written.append(f"during-{n}")

        writer = threading.Thread(target=write)
        writer.start()
        try:
            for _ in range(600):  # the first write is in before the backup begins
                if written or not writer.is_alive():
                    break
                stop.wait(0.05)
            done = baepo_cli("backup", str(archive), "--data-dir", str(stack.baepo.data_dir))
        finally:
            stop.set()
            writer.join(120)
        assert done.returncode == 0, done.stderr
        assert "blobs" in done.stdout
        assert len(written) > 1, "no write went on during the backup"
    # The machine is gone: Baepo stopped, its router and containers removed (open_stack's
    # end); the image too.
    stack.docker("rmi", "-f", local, ref, f"127.0.0.1:{port}/alice/{name}@{digest}", check=False)
    assert stack.docker("image", "inspect", ref, check=False).returncode != 0

    restored = tmp_path / "b" / "data"
    done = baepo_cli("restore", str(archive), "--data-dir", str(restored))
    assert done.returncode == 0, done.stderr
    again = BaepoProcess(restored, port=port)
    again.start(timeout=60)
    try:
        with httpx.Client(
            base_url=again.url, headers={"Authorization": f"Bearer {token}"}
        ) as alice:
            mine = alice.get("/api/v1/tokens")
            assert mine.status_code == 200, mine.text
            assert [t["name"] for t in mine.json()] == ["laptop"]
        with again.api() as admin:
            tokens = {t["name"] for t in admin.get("/api/v1/tokens").json()}
        assert {"during-0"} <= tokens  # made before the backup's copy of the database

        pulled = skopeo(
            *("copy", "--src-tls-verify=false", "--src-creds", f"token:{token}"),
            f"docker://{again.host}/alice/{name}@{digest}",
            f"dir:{tmp_path / 'pulled'}",
        )
        assert pulled.returncode == 0

        # The CA came back too: the certificate is verified with the one saved before.
        Stack(again, stack.docker, stack.env, stack.ca_file).wait_for(
            f"{name}.localhost", "hello v1", timeout=180
        )
    finally:
        again.stop()
        again.stop_data_plane()
