"""The docker CLI pushes to and pulls from `registry.<domain>` over HTTPS, trusting only
Baepo's CA, as a client on another machine would (no insecure-registry setting).

Two things of the machine are borrowed, each for this test's own names only, and given back:

- The Docker daemon (not the CLI) resolves the registry host and checks its certificate. It
  treats every registry that resolves to a loopback address as insecure (127.0.0.0/8 is in its
  default insecure CIDRs: TLS unverified, plain HTTP allowed), which would prove nothing; and
  `*.localhost` does not resolve here (glibc has no `myhostname` entry in nsswitch.conf). So
  the test uses a unique domain, `b<random>.test`, and a line in /etc/hosts pointing
  `registry.<domain>` at this machine's own non-loopback address, where the router listens.
- The daemon trusts a registry's CA from /etc/docker/certs.d/<host:port>/ca.crt; the test
  writes Baepo's CA there for its own host and port.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.clients import Docker, docker_host
from tests.components import missing
from tests.conftest import BaepoProcess

pytestmark = pytest.mark.integration

HOSTS = Path("/etc/hosts")
CERTS_D = Path("/etc/docker/certs.d")


def own_address() -> str | None:
    """This machine's address on its default route (not loopback), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("198.51.100.1", 9))  # no packet is sent: only a route is chosen
        except OSError:
            return None
        address = str(s.getsockname()[0])
    return None if address.startswith("127.") else address


@contextlib.contextmanager
def hosts_entry(address: str, name: str) -> Iterator[None]:
    line = f"{address} {name}  # baepo test {name}\n"
    with HOSTS.open("a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(line)
    try:
        yield
    finally:
        with HOSTS.open("r+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            kept = [ln for ln in f.readlines() if ln != line]
            f.seek(0)
            f.writelines(kept)
            f.truncate()


@dataclass
class Remote:
    baepo: BaepoProcess
    docker: Docker
    registry: str  # "registry.<domain>:<https port>"
    ca_pem: str
    certs_dir: Path


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remote]:
    address = own_address()
    if address is None:
        missing("this machine has no non-loopback address for the registry host")
    if not (HOSTS.exists() and shutil.which("docker")):
        missing("needs /etc/hosts and the docker CLI")
    host = docker_host()
    root = tmp_path_factory.mktemp("remote")
    domain = f"b{secrets.token_hex(4)}.test"
    baepo = BaepoProcess(root / "data", extra_args=("--domain", domain))
    name = f"registry.{domain}"
    registry = f"{name}:{baepo.https_port}"
    certs_dir = CERTS_D / registry
    made_certs_d = not CERTS_D.exists()
    with hosts_entry(address, name):
        baepo.start()
        try:
            ca_pem = httpx.get(f"{baepo.url}/api/v1/ca", timeout=10).text
            assert "BEGIN CERTIFICATE" in ca_pem
            yield Remote(baepo, Docker(host, root / "docker"), registry, ca_pem, certs_dir)
        finally:
            shutil.rmtree(certs_dir, ignore_errors=True)
            if made_certs_d:
                with contextlib.suppress(OSError):
                    CERTS_D.rmdir()  # only if empty: another test may be using it
            baepo.stop()
            baepo.stop_data_plane()


def test_without_baepos_ca_the_daemon_refuses_the_registry(remote: Remote) -> None:
    shutil.rmtree(remote.certs_dir, ignore_errors=True)
    done = remote.docker(
        "login",
        remote.registry,
        "-u",
        "admin",
        "--password-stdin",
        input=remote.baepo.password,
        check=False,
    )
    assert done.returncode != 0
    assert "certificate" in done.stderr  # x509: certificate signed by unknown authority


def test_docker_logs_in_pushes_and_pulls_over_https_trusting_baepos_ca(remote: Remote) -> None:
    remote.certs_dir.mkdir(parents=True, exist_ok=True)
    (remote.certs_dir / "ca.crt").write_text(remote.ca_pem)
    docker = remote.docker
    docker("login", remote.registry, "-u", "admin", "--password-stdin", input=remote.baepo.password)
    ref = f"{remote.registry}/team/over-https:1"
    docker("tag", "baepo-test/hello:1", ref)
    pushed = docker("push", ref)
    assert "digest: sha256:" in pushed.stdout
    digest = pushed.stdout.split("digest: ")[1].split()[0]
    docker("rmi", ref)
    docker("pull", ref)
    inspected = json.loads(docker("image", "inspect", ref).stdout)
    assert f"{remote.registry}/team/over-https@{digest}" in inspected[0]["RepoDigests"]
    # The same image is in the registry Baepo serves on its loopback port.
    with remote.baepo.api() as api:
        tags = api.get("/v2/team/over-https/tags/list")
    assert tags.status_code == 200 and tags.json()["tags"] == ["1"]


def test_the_token_realm_names_the_https_host(remote: Remote, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text(remote.ca_pem)
    name, port = remote.registry.rsplit(":", 1)
    done = subprocess.run(
        [
            "curl",
            "-sS",
            "-D",
            "-",
            "-o",
            "/dev/null",
            "--cacert",
            str(ca),
            "--resolve",
            f"{name}:{port}:127.0.0.1",
            f"https://{remote.registry}/v2/",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert f'realm="https://{remote.registry}/auth/token"' in done.stdout


def test_a_service_runs_an_image_named_by_the_https_host(remote: Remote) -> None:
    """The engine pulls Baepo's own images from its loopback address, whatever name the
    service gives them: no DNS name or CA trust is needed on the engine's side."""
    shutil.rmtree(remote.certs_dir, ignore_errors=True)  # the engine must not need it
    image = f"{remote.registry}/team/over-https:1"
    with remote.baepo.api() as api:
        created = api.post(
            "/api/v1/services", json={"name": "named-https", "image": image, "port": 8080}
        )
        assert created.status_code in (200, 201, 202), created.text
        op = created.json()["operation"]["id"]
        deadline = time.monotonic() + 60
        while (status := api.get(f"/api/v1/operations/{op}").json()["status"]) not in (
            "SUCCEEDED",
            "FAILED",
        ):
            assert time.monotonic() < deadline, status
            time.sleep(0.2)
        log = [line["line"] for line in api.get(f"/api/v1/operations/{op}").json()["log"]]
        assert status == "SUCCEEDED", log
        assert any(f"pulled 127.0.0.1:{remote.baepo.port}/team/over-https" in ln for ln in log)
        assert api.delete("/api/v1/services/named-https").status_code in (200, 202)
