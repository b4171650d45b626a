"""kill -9 in the middle of a 200 MB chunked upload: nothing partial is ever served, the
client's retry succeeds, and garbage collection leaves nothing behind."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.backends import BACKENDS
from tests.conftest import BaepoProcess

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
TOTAL = 200 * MiB
CHUNK = 20 * MiB


def payload() -> bytes:
    # Deterministic and incompressible enough; built once per test (200 MB in memory is fine).
    seed = hashlib.sha256(b"baepo").digest()
    block = b"".join(hashlib.sha256(seed + i.to_bytes(4, "big")).digest() for i in range(32768))
    return (block * (TOTAL // len(block) + 1))[:TOTAL]


def registry(server: BaepoProcess) -> httpx.Client:
    return httpx.Client(base_url=server.url, auth=server.admin, timeout=120)


def patch(c: httpx.Client, location: str, data: bytes, start: int) -> httpx.Response:
    return c.patch(
        location,
        content=data,
        headers={
            "Content-Type": "application/octet-stream",
            "Content-Range": f"{start}-{start + len(data) - 1}",
            "Content-Length": str(len(data)),
        },
    )


def blob_files(data_dir: Path) -> set[str]:
    """The names of the blobs stored, on disk or in the bucket (tests/backends.py)."""
    names = (path.rsplit("/", 1)[-1] for path in BACKENDS.stored_files(data_dir))
    return {name for name in names if len(name) == 64}


def test_kill_9_mid_upload_then_resume_and_gc(fresh_baepo: BaepoProcess) -> None:
    data = payload()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    repo = "team/crash"
    with registry(fresh_baepo) as c:
        r = c.post(f"/v2/{repo}/blobs/uploads/")
        assert r.status_code == 202, r.text
        location = r.headers["location"]
        offset = 0
        for _ in range(5):  # 100 MB in whole chunks
            r = patch(c, location, data[offset : offset + CHUNK], offset)
            assert r.status_code == 202, r.text
            offset += CHUNK

        # The next chunk is cut off by kill -9 while it streams.
        killed = threading.Event()

        def slow_chunk() -> Iterator[bytes]:
            piece = data[offset : offset + CHUNK]
            for i in range(0, len(piece), MiB):
                if i == 8 * MiB:
                    fresh_baepo.kill()
                    killed.set()
                yield piece[i : i + MiB]

        with pytest.raises(httpx.HTTPError):
            c.patch(
                location,
                content=slow_chunk(),
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{offset}-{offset + CHUNK - 1}",
                },
            )
        assert killed.is_set()

    fresh_baepo.start()
    with registry(fresh_baepo) as c:
        # Nothing partial is served: the blob does not exist.
        assert c.head(f"/v2/{repo}/blobs/{digest}").status_code == 404
        # The client asks where to resume; the registry answers with what it really holds.
        status = c.get(location)
        assert status.status_code == 204, status.text
        end = int(status.headers["range"].split("-")[1])
        resume = end + 1
        assert resume >= 5 * CHUNK, "whole chunks acknowledged before the crash were lost"
        assert resume <= 6 * CHUNK
        location = status.headers["location"]
        while resume < TOTAL:
            piece = data[resume : resume + CHUNK]
            r = patch(c, location, piece, resume)
            assert r.status_code == 202, r.text
            location = r.headers["location"]
            resume += len(piece)
        sep = "&" if "?" in location else "?"
        r = c.put(f"{location}{sep}digest={digest}")
        assert r.status_code == 201, r.text

        got = hashlib.sha256()
        with c.stream("GET", f"/v2/{repo}/blobs/{digest}") as s:
            assert s.status_code == 200
            for part in s.iter_bytes():
                got.update(part)
        assert "sha256:" + got.hexdigest() == digest

        # A manifest keeps the big blob; an abandoned second upload is garbage.
        config = json.dumps(
            {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
        ).encode()
        config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
        r = c.post(
            f"/v2/{repo}/blobs/uploads/?digest={config_digest}",
            content=config,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert r.status_code == 201, r.text
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": digest,
                    "size": TOTAL,
                }
            ],
        }
        r = c.put(
            f"/v2/{repo}/manifests/v1",
            content=json.dumps(manifest),
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert r.status_code == 201, r.text
        orphan = os.urandom(MiB)
        orphan_digest = "sha256:" + hashlib.sha256(orphan).hexdigest()
        r = c.post(
            f"/v2/{repo}/blobs/uploads/?digest={orphan_digest}",
            content=orphan,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert r.status_code == 201
        r = c.post(f"/v2/{repo}/blobs/uploads/")
        patch(c, r.headers["location"], orphan[:1000], 0)

    with fresh_baepo.api() as api:
        dry = api.post("/api/v1/registry/gc", json={"dry_run": True, "grace_seconds": 0})
        assert dry.status_code == 200, dry.text
        assert dry.json()["blobs"] == [orphan_digest]
        done = api.post("/api/v1/registry/gc", json={"dry_run": False, "grace_seconds": 0})
        assert done.json()["blobs"] == [orphan_digest]

    kept = blob_files(fresh_baepo.data_dir)
    assert digest.split(":")[1] in kept and config_digest.split(":")[1] in kept
    assert orphan_digest.split(":")[1] not in kept
    leftovers = [
        path
        for path in BACKENDS.stored_files(fresh_baepo.data_dir)
        if "upload" in path or path.endswith(".tmp")
    ]
    assert leftovers == [], f"gc left garbage behind: {leftovers}"
