"""More real clients: ORAS (the Python SDK) for artifacts, and containerd's `ctr`."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.clients import Docker, docker_host
from tests.components import missing
from tests.conftest import BaepoProcess

pytestmark = pytest.mark.integration


def test_oras_pushes_and_pulls_an_artifact(baepo_server: BaepoProcess, tmp_path: Path) -> None:
    try:
        import oras.client as oras_client  # type: ignore[import-untyped]  # oras ships no type information
    except ImportError:
        missing("the oras package is not installed (uv sync)")
    note = tmp_path / "note.txt"
    note.write_text("release notes for v1\n")
    client = oras_client.OrasClient(hostname=baepo_server.host, insecure=True)
    client.login(
        username="admin",
        password=baepo_server.password,
        hostname=baepo_server.host,
        config_path=str(tmp_path / "oras.json"),
    )
    target = f"{baepo_server.host}/team/notes-{secrets.token_hex(3)}:v1"
    old = Path.cwd()
    os.chdir(tmp_path)  # oras names layers by their path relative to the working directory
    try:
        pushed = client.push(files=["note.txt"], target=target)
        assert pushed.status_code == 201
        files = client.pull(target=target, outdir=str(tmp_path / "out"))
    finally:
        os.chdir(old)
    assert [Path(f).read_text() for f in files] == ["release notes for v1\n"]
    assert client.get_tags(target.rsplit(":", 1)[0]) == ["v1"]


def containerd_socket(host: str) -> str:
    if host.startswith("unix://") and "baepo-engine" in host:
        sock = "/run/baepo-engine/exec/containerd/containerd.sock"
    else:
        sock = "/run/containerd/containerd.sock"
    if not Path(sock).exists() or shutil.which("ctr") is None:
        missing(f"no containerd socket for ctr at {sock}")
    return sock


def test_containerd_ctr_pulls_and_pushes(baepo_server: BaepoProcess, tmp_path: Path) -> None:
    docker = Docker(docker_host(), tmp_path / "docker")
    sock = containerd_socket(docker.host)
    repo = f"{baepo_server.host}/team/ctr-{secrets.token_hex(3)}"
    docker(
        "login", baepo_server.host, "-u", "admin", "--password-stdin", input=baepo_server.password
    )
    docker("tag", "baepo-test/busybox:1", f"{repo}:1")
    docker("push", f"{repo}:1")
    docker("rmi", f"{repo}:1")
    namespace = f"baepo-test-{secrets.token_hex(3)}"
    user = f"admin:{baepo_server.password}"

    def ctr(*args: str) -> str:
        done = subprocess.run(
            ["ctr", "-a", sock, "-n", namespace, *args], capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"ctr {' '.join(args)}:\n{done.stdout}{done.stderr}"
        return done.stdout

    try:
        ctr("images", "pull", "--plain-http", "--user", user, f"{repo}:1")
        ctr("images", "tag", f"{repo}:1", f"{repo}:copy")
        ctr("images", "push", "--plain-http", "--user", user, f"{repo}:copy")
        ctr("images", "rm", f"{repo}:copy")
        ctr("images", "pull", "--plain-http", "--user", user, f"{repo}:copy")
        assert f"{repo}:copy" in ctr("images", "ls", "-q")
    finally:
        for tag in ("1", "copy"):
            subprocess.run(
                ["ctr", "-a", sock, "-n", namespace, "images", "rm", f"{repo}:{tag}"],
                capture_output=True,
                timeout=60,
            )
        subprocess.run(
            ["ctr", "-a", sock, "namespaces", "rm", namespace], capture_output=True, timeout=60
        )
