"""Real clients for integration tests: the docker CLI against the engine, skopeo, OCI layouts."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import secrets
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from tests.components import missing

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def docker_host() -> str:
    """`DOCKER_HOST`, else the engine `scripts/engine` finds or starts."""
    host = os.environ.get("DOCKER_HOST")
    if host:
        return host
    root = Path(__file__).resolve().parents[1]
    try:
        return subprocess.run(
            [str(root / "scripts/engine")], check=True, capture_output=True, text=True, timeout=90
        ).stdout.strip()
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        missing(f"no Docker engine: {exc}")


@dataclass
class Docker:
    """The docker CLI with its own config dir (credentials) against the test engine."""

    host: str
    config_dir: Path

    def __call__(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "DOCKER_HOST": self.host,
            "DOCKER_CONFIG": str(self.config_dir),
            "DOCKER_BUILDKIT": "0",
        }
        result = subprocess.run(
            ["docker", *args], env=env, input=input, capture_output=True, text=True, timeout=600
        )
        if check and result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
        return result

    def inspect(self, name: str) -> dict[str, Any]:
        """The engine's own record of a container (or image, network): `docker inspect`."""
        found = json.loads(self("inspect", name).stdout)
        assert isinstance(found, list) and len(found) == 1, found
        return cast(dict[str, Any], found[0])


def skopeo(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"skopeo {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result


def registry_digest(ref: str, credentials: tuple[str, str]) -> str:
    """The manifest digest a registry serves for `ref`, as skopeo reads it (over plain HTTP)."""
    creds = ":".join(credentials)
    found = skopeo(
        "inspect",
        "--tls-verify=false",
        "--creds",
        creds,
        "--format",
        "{{.Digest}}",
        f"docker://{ref}",
    )
    return found.stdout.strip()


class OciLayout:
    """Writes an OCI image layout directory by hand: blobs, manifests, an index.json."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs/sha256").mkdir(parents=True, exist_ok=True)
        (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        self.refs: list[dict[str, object]] = []

    def blob(self, data: bytes, media_type: str) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        (self.root / "blobs/sha256" / digest).write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    def image(self, arch: str, layer_bytes: int = 4096, layers: int = 1) -> dict[str, object]:
        layer_descs = []
        diff_ids = []
        for i in range(layers):
            raw = tar_with_file(f"file-{arch}-{i}", secrets.token_bytes(layer_bytes))
            diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
            layer_descs.append(
                self.blob(
                    gzip.compress(raw, compresslevel=1),
                    "application/vnd.oci.image.layer.v1.tar+gzip",
                )
            )
        config = {
            "architecture": arch,
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "config": {"Cmd": ["/bin/sh"]},
        }
        config_desc = self.blob(
            json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json"
        )
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config_desc,
            "layers": layer_descs,
        }
        desc = self.blob(json.dumps(manifest).encode(), OCI_MANIFEST)
        desc["platform"] = {"architecture": arch, "os": "linux"}
        return desc

    def index(self, children: list[dict[str, object]]) -> dict[str, object]:
        body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}
        return self.blob(json.dumps(body).encode(), OCI_INDEX)

    def tag(self, desc: dict[str, object], name: str) -> None:
        ref = {k: v for k, v in desc.items() if k != "platform"}
        ref["annotations"] = {"org.opencontainers.image.ref.name": name}
        self.refs.append(ref)
        (self.root / "index.json").write_text(
            json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.refs})
        )


def tar_with_file(name: str, content: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        info.mtime = 0
        tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()
