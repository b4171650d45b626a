"""The registry with real clients: the docker CLI against a real engine, and skopeo."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.clients import Docker, OciLayout, docker_host, skopeo
from tests.conftest import BaepoProcess

pytestmark = pytest.mark.integration

BUSYBOX = "baepo-test/busybox:1"


@pytest.fixture(scope="module")
def docker(tmp_path_factory: pytest.TempPathFactory) -> Docker:
    d = Docker(docker_host(), tmp_path_factory.mktemp("docker-config"))
    if d("image", "inspect", BUSYBOX, check=False).returncode != 0:
        pytest.fail(f"{BUSYBOX} missing: run scripts/test-images")
    return d


@pytest.fixture
def pushed(docker: Docker, baepo_server: BaepoProcess) -> Iterator[str]:
    """A unique image reference in Baepo, pushed by the docker CLI."""
    ref = f"{baepo_server.host}/team/app-{secrets.token_hex(3)}:1"
    docker(
        "login", baepo_server.host, "-u", "admin", "--password-stdin", input=baepo_server.password
    )
    docker("tag", BUSYBOX, ref)
    docker("push", ref)
    yield ref
    docker("rmi", "-f", ref, check=False)


def test_docker_login_push_rmi_pull_run(docker: Docker, pushed: str) -> None:
    docker("rmi", pushed)
    docker("pull", pushed)
    out = docker("run", "--rm", pushed, "echo", "pulled-and-ran").stdout
    assert "pulled-and-ran" in out


def test_docker_login_with_a_wrong_password_fails(
    docker: Docker, baepo_server: BaepoProcess, tmp_path: Path
) -> None:
    other = Docker(docker.host, tmp_path)
    result = other(
        "login",
        baepo_server.host,
        "-u",
        "admin",
        "--password-stdin",
        input="wrong-password",
        check=False,
    )
    assert result.returncode != 0
    assert "unauthorized" in (result.stdout + result.stderr).lower()


def test_pushed_digest_matches_what_the_registry_serves(
    docker: Docker, pushed: str, baepo_server: BaepoProcess
) -> None:
    repo_digest = docker("inspect", "--format", "{{index .RepoDigests 0}}", pushed).stdout.strip()
    digest = repo_digest.split("@", 1)[1]
    name = pushed.split("/", 1)[1].rsplit(":", 1)[0]
    raw = skopeo(
        "inspect",
        "--raw",
        "--tls-verify=false",
        f"--creds=admin:{baepo_server.password}",
        f"docker://{pushed}",
    ).stdout
    import hashlib

    assert "sha256:" + hashlib.sha256(raw.encode()).hexdigest() == digest
    with baepo_server.api() as api:
        r = api.get(f"/api/v1/registry/repositories/{name}/tags")
        assert r.status_code == 200, r.text
        tags = r.json()
    assert [(t["tag"], t["digest"]) for t in tags] == [("1", digest)]


def test_an_api_token_limited_to_one_repository(
    docker: Docker, baepo_server: BaepoProcess, tmp_path: Path
) -> None:
    repo = f"team/robot-{secrets.token_hex(3)}"
    with baepo_server.api() as api:
        token = api.post("/api/v1/tokens", json={"name": f"ci-{repo}", "repositories": [repo]})
        assert token.status_code == 201, token.text
    robot = Docker(docker.host, tmp_path)
    robot(
        "login", baepo_server.host, "-u", "token", "--password-stdin", input=token.json()["token"]
    )
    allowed = f"{baepo_server.host}/{repo}:1"
    denied = f"{baepo_server.host}/team/elsewhere-{secrets.token_hex(3)}:1"
    robot("tag", BUSYBOX, allowed)
    robot("tag", BUSYBOX, denied)
    try:
        robot("push", allowed)
        refused = robot("push", denied, check=False)
        assert refused.returncode != 0
        assert any(w in refused.stderr.lower() for w in ("denied", "unauthorized"))
    finally:
        robot("rmi", allowed, denied, check=False)


def test_anonymous_pull_only_from_a_public_repository(
    pushed: str, baepo_server: BaepoProcess
) -> None:
    name = pushed.split("/", 1)[1].rsplit(":", 1)[0]
    anon = skopeo(
        "inspect", "--raw", "--tls-verify=false", "--no-creds", f"docker://{pushed}", check=False
    )
    assert anon.returncode != 0
    baepo_server.make_public(name)
    skopeo("inspect", "--raw", "--tls-verify=false", "--no-creds", f"docker://{pushed}")
    push = skopeo(
        "copy",
        "--dest-tls-verify=false",
        "--dest-no-creds",
        f"docker://{pushed}",
        f"docker://{baepo_server.host}/{name}:anon",
        "--src-tls-verify=false",
        "--src-no-creds",
        check=False,
    )
    assert push.returncode != 0


def test_skopeo_round_trip_of_a_multi_platform_index(
    baepo_server: BaepoProcess, tmp_path: Path
) -> None:
    layout = OciLayout(tmp_path / "src")
    index = layout.index([layout.image("amd64", layers=2), layout.image("arm64", layers=3)])
    layout.tag(index, "multi")
    creds = f"admin:{baepo_server.password}"
    target = f"docker://{baepo_server.host}/team/multi-{secrets.token_hex(3)}:v1"
    skopeo(
        "copy",
        "--all",
        "--dest-tls-verify=false",
        f"--dest-creds={creds}",
        f"oci:{layout.root}:multi",
        target,
    )
    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"--creds={creds}", target).stdout
    assert json.loads(raw)["manifests"][1]["platform"]["architecture"] == "arm64"
    skopeo(
        "copy",
        "--all",
        "--src-tls-verify=false",
        f"--src-creds={creds}",
        target,
        f"oci:{tmp_path / 'back'}:multi",
    )
    back = json.loads((tmp_path / "back/index.json").read_text())["manifests"][0]
    assert back["digest"] == index["digest"]
    for child in json.loads(raw)["manifests"]:
        blob = tmp_path / "back/blobs" / child["digest"].replace(":", "/")
        assert blob.exists(), f"{child['digest']} did not come back"
    for blob in (tmp_path / "src/blobs/sha256").iterdir():
        assert (tmp_path / "back/blobs/sha256" / blob.name).read_bytes() == blob.read_bytes()


def test_unauthenticated_v2_answers_with_a_bearer_challenge(baepo_server: BaepoProcess) -> None:
    r = httpx.get(baepo_server.url + "/v2/")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith(
        f'Bearer realm="{baepo_server.url}/auth/token",service="baepo"'
    )
    assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert r.headers["docker-distribution-api-version"] == "registry/2.0"
