"""A data directory that turns read-only under a running Baepo (ext4 mounted with
`errors=remount-ro` meets an error: the kernel remounts it read-only at once, open files and
all): what only reads still works, every write is an error the client can read (OCI JSON on
/v2, the API's JSON elsewhere), and after the administrator's repair (stop, fsck, mount, start)
nothing is half-written and the same pushes go through."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.backends import on_sqlite_fs_only
from tests.clients import OciLayout, skopeo
from tests.components import missing
from tests.conftest import ADMIN_PASSWORD, BaepoProcess, running

pytestmark = [pytest.mark.integration, on_sqlite_fs_only]  # SQLite's and the blobs' disk


class Ext4Disk:
    """A small ext4 filesystem on a loop device, mounted with errors=remount-ro."""

    def __init__(self, image: Path, mount: Path) -> None:
        self.image, self.mount = image, mount
        subprocess.run(["truncate", "-s", "256M", str(image)], check=True)
        subprocess.run(["mkfs.ext4", "-q", str(image)], check=True)
        mount.mkdir()
        self.attach()

    def attach(self) -> None:
        options = "loop,errors=remount-ro"
        subprocess.run(["mount", "-o", options, str(self.image), str(self.mount)], check=True)

    def fail(self) -> None:
        """An error as a failing disk would cause one: ext4 goes read-only on the spot."""
        source = subprocess.run(
            ["findmnt", "-n", "-o", "SOURCE", str(self.mount)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        trigger = Path("/sys/fs/ext4") / Path(source).name / "trigger_fs_error"
        trigger.write_text("baepo test: disk error")

    def repair(self) -> None:
        for _ in range(50):  # the HAProxy Baepo stopped may take a moment to let go
            if subprocess.run(["umount", str(self.mount)], check=False).returncode == 0:
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"cannot unmount {self.mount}")
        subprocess.run(["e2fsck", "-fy", str(self.image)], capture_output=True, check=False)
        self.attach()

    def detach(self) -> None:
        subprocess.run(["umount", "-l", str(self.mount)], check=False)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Ext4Disk]:
    if os.geteuid() != 0:
        missing("mounting an ext4 image needs root")
    for tool in ("mkfs.ext4", "e2fsck", "losetup"):
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            missing(f"{tool} (Debian package e2fsprogs / mount)")
    made = Ext4Disk(tmp_path / "disk.img", tmp_path / "disk")
    try:
        yield made
    finally:
        made.detach()


def push(server: BaepoProcess, layout: OciLayout, tag: str, target: str) -> None:
    skopeo(
        "copy",
        "--dest-tls-verify=false",
        f"--dest-creds=admin:{server.password}",
        f"oci:{layout.root}:{tag}",
        f"docker://{server.host}/{target}",
    )


def structured(answer: httpx.Response, where: str) -> Any:
    assert answer.headers["content-type"].startswith("application/json"), (
        where,
        answer.status_code,
        answer.text,
    )
    return answer.json()


def test_a_read_only_data_directory_refuses_writes_clearly_and_recovers(
    disk: Ext4Disk, tmp_path: Path
) -> None:
    layout = OciLayout(tmp_path / "image")
    layout.tag(layout.image("amd64"), "one")
    layout.tag(layout.image("amd64"), "two")
    data = disk.mount  # the log beside it stays on the test's own disk
    with running(data) as server:
        push(server, layout, "one", "team/app:one")
        uploads = server.data_dir / "registry" / "uploads"
        before = sorted(p.name for p in uploads.iterdir())
        disk.fail()
        with httpx.Client(base_url=server.url, auth=server.admin, timeout=60) as client:
            # Reads go on.
            manifest = client.get(
                "/v2/team/app/manifests/one",
                headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
            )
            assert manifest.status_code == 200, manifest.text
            layer = manifest.json()["layers"][0]["digest"]
            assert client.get(f"/v2/team/app/blobs/{layer}").status_code == 200
            assert client.get("/api/v1/services").status_code == 200
            # Writes are refused, each in its edge's error shape.
            started = client.post("/v2/team/app/blobs/uploads/")
            assert started.status_code == 503, started.text
            assert structured(started, "upload")["errors"][0]["code"] == "UNAVAILABLE"
            document = json.dumps(manifest.json()).encode()
            put = client.put(
                "/v2/team/app/manifests/copy",
                content=document,
                headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
            )
            assert put.status_code == 503, put.text
            assert structured(put, "manifest")["errors"][0]["code"] == "UNAVAILABLE"
            created = client.post(
                "/api/v1/users", json={"name": "newcomer", "password": "a-long-password"}
            )
            assert created.status_code == 503, created.text
            assert "error" in structured(created, "users")
            service = client.post(
                "/api/v1/services", json={"name": "web", "image": f"{server.host}/team/app:one"}
            )
            assert service.status_code == 503, service.text
            assert "error" in structured(service, "services")
            login = client.post(
                "/api/v1/login", json={"username": "admin", "password": ADMIN_PASSWORD}
            )
            assert login.status_code in (200, 503), login.text
            structured(login, "login")
            # A client's own push fails with an error, not a hang.
            failed = skopeo(
                "copy",
                "--dest-tls-verify=false",
                f"--dest-creds=admin:{server.password}",
                f"oci:{layout.root}:two",
                f"docker://{server.host}/team/app:two",
                check=False,
            )
            assert failed.returncode != 0
    disk.repair()
    with running(data) as server:
        # Nothing half-written, and the same push now goes through.
        assert sorted(p.name for p in uploads.iterdir()) == before
        push(server, layout, "two", "team/app:two")
        with httpx.Client(base_url=server.url, auth=server.admin, timeout=60) as client:
            assert client.get("/v2/team/app/tags/list").json()["tags"] == ["one", "two"]
            again = client.post(
                "/api/v1/users", json={"name": "newcomer", "password": "a-long-password"}
            )
            assert again.status_code == 201, again.text
