"""The registry on S3 (a real SeaweedFS, tests/s3server.py): presigned redirects, a wrong
secret at start, and real clients against `baepo up --storage s3` — the docker CLI pushes and
pulls a multi-layer image, skopeo copies it, and gc removes an unreferenced blob from the
bucket."""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from baepo.clock import FakeClock
from baepo.config import Config
from baepo.events import EventBus
from baepo.registry import Registry, create_app
from baepo.server import StartupError, storage_driver
from baepo.storage import S3Driver, S3Settings
from baepo.store import Database
from tests.clients import Docker, docker_host, skopeo
from tests.conftest import BaepoProcess
from tests.s3server import ACCESS_KEY, SECRET_KEY, S3Server

from .conftest import AllowAll
from .content import push_blob, random_layer

BUSYBOX = "baepo-test/busybox:1"


def blob_key(digest: str) -> str:
    algorithm, _, hexpart = digest.partition(":")
    return f"blobs/{algorithm}/{hexpart[:2]}/{hexpart}"


def test_blob_gets_redirect_to_presigned_urls(
    s3_server: S3Server, db: Database, clock: FakeClock, make_client: Any
) -> None:
    settings = S3Settings(
        s3_server.bucket(),
        s3_server.endpoint,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        redirect=True,
    )
    registry = Registry(db=db, driver=S3Driver.connect(settings), bus=EventBus(), clock=clock)
    client = make_client(create_app(registry, AllowAll()))
    layer = random_layer(1000)
    push_blob(client, "team/app", layer)
    url = f"/v2/team/app/blobs/{layer.digest}"
    assert client.head(url).headers["content-length"] == "1000"  # HEAD stays here
    moved = client.get(url)
    assert moved.status_code == 307
    location = moved.headers["location"]
    assert location.startswith(s3_server.endpoint)
    # The client needs no S3 credentials, and Range goes to S3 with it.
    assert httpx.get(location).content == layer.data
    part = httpx.get(location, headers={"Range": "bytes=10-19"})
    assert (part.status_code, part.content) == (206, layer.data[10:20])


def test_a_wrong_secret_stops_baepo_up_with_one_line(s3_server: S3Server, tmp_path: Path) -> None:
    config = Config(
        data_dir=tmp_path,
        storage="s3",
        s3_endpoint=s3_server.endpoint,
        s3_bucket=s3_server.bucket(),
        s3_access_key=ACCESS_KEY,
        s3_secret_key="not-the-secret",
    )
    with pytest.raises(StartupError) as refused:
        storage_driver(config)
    assert str(refused.value).startswith(
        "cannot use S3 storage: S3 refused the credentials (SignatureDoesNotMatch)"
    )
    with pytest.raises(StartupError, match="--storage s3 needs --s3-bucket"):
        storage_driver(Config(data_dir=tmp_path, storage="s3"))


@pytest.fixture
def baepo_on_s3(
    s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[BaepoProcess, str]]:
    """`baepo up --storage s3 --s3-redirect`, credentials from the environment."""
    bucket = s3_server.bucket()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    server = BaepoProcess(
        tmp_path / "data",
        extra_args=(
            "--storage", "s3", "--s3-endpoint", s3_server.endpoint, "--s3-bucket", bucket,
            "--s3-redirect",
        ),
    )  # fmt: skip
    server.start(timeout=60)
    try:
        yield server, bucket
    finally:
        server.stop()
        server.stop_data_plane()


@pytest.mark.integration
def test_docker_skopeo_and_gc_on_s3(
    baepo_on_s3: tuple[BaepoProcess, str], s3_server: S3Server, tmp_path: Path
) -> None:
    server, bucket = baepo_on_s3
    docker = Docker(docker_host(), tmp_path / "docker-config")
    if docker("image", "inspect", BUSYBOX, check=False).returncode != 0:
        pytest.fail(f"{BUSYBOX} missing: run scripts/test-images")
    # Three layers; one of 12 MiB of noise, sent in more than one S3 part.
    context = tmp_path / "context"
    context.mkdir()
    (context / "noise").write_bytes(os.urandom(12 * 1024 * 1024))
    (context / "Dockerfile").write_text(
        f"FROM {BUSYBOX}\nCOPY noise /noise\nRUN echo s3 > /where\n"
    )
    ref = f"{server.host}/team/s3-{secrets.token_hex(3)}:1"
    docker("build", "-q", "-t", ref, str(context))
    try:
        docker("login", server.host, "-u", "admin", "--password-stdin", input=server.password)
        docker("push", ref)
        docker("rmi", ref)
        docker("pull", ref)  # blobs through 307s to presigned URLs
        out = docker("run", "--rm", ref, "sh", "-c", "cat /where; wc -c < /noise").stdout
        assert out.split() == ["s3", str(12 * 1024 * 1024)]
    finally:
        docker("rmi", "-f", ref, check=False)
    layers = {k for k in s3_server.objects(bucket, "blobs/") if k}
    assert len(layers) >= 5  # three layers, a config, a manifest

    creds = f"admin:{server.password}"
    copy = f"{server.host}/team/s3-copy:1"
    skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false", f"--src-creds={creds}",
           f"--dest-creds={creds}", f"docker://{ref}", f"docker://{copy}")  # fmt: skip
    layout = tmp_path / "oci"
    skopeo("copy", "--src-tls-verify=false", f"--src-creds={creds}", f"docker://{copy}",
           f"oci:{layout}:copy")  # fmt: skip
    assert (layout / "index.json").exists()

    # An unreferenced blob: pushed, never named by a manifest; gc with no grace removes it.
    orphan = os.urandom(2048)
    digest = "sha256:" + hashlib.sha256(orphan).hexdigest()
    token = httpx.get(
        f"{server.url}/auth/token",
        params={"service": "baepo", "scope": "repository:team/orphan:push,pull"},
        auth=server.admin,
    ).json()["token"]
    pushed = httpx.post(
        f"{server.url}/v2/team/orphan/blobs/uploads/",
        params={"digest": digest},
        content=orphan,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert pushed.status_code == 201, pushed.text
    assert blob_key(digest) in s3_server.objects(bucket, "blobs/")
    with server.api() as api:
        report = api.post("/api/v1/registry/gc", json={"grace_seconds": 0}).json()
    assert report["blobs"] == [digest]
    stored = set(s3_server.objects(bucket, "blobs/"))
    assert blob_key(digest) not in stored
    assert layers <= stored  # what the images use stays
    assert s3_server.objects(bucket, "uploads/") == {}
