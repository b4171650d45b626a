"""`baepo login` and `baepo registry …` against a real server, as a person types them."""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path

import httpx
import pytest

from tests.cli.command import baepo
from tests.conftest import BaepoProcess, free_port

pytestmark = pytest.mark.integration


def push_image(server: BaepoProcess, repo: str, tag: str, layer: bytes) -> str:
    with httpx.Client(base_url=server.url, auth=server.admin) as c:
        config = json.dumps({"os": "linux", "architecture": "amd64"}).encode()
        descs = []
        for data, media in (
            (config, "application/vnd.oci.image.config.v1+json"),
            (layer, "application/vnd.oci.image.layer.v1.tar"),
        ):
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            r = c.post(f"/v2/{repo}/blobs/uploads/?digest={digest}", content=data)
            assert r.status_code == 201, r.text
            descs.append({"mediaType": media, "digest": digest, "size": len(data)})
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": descs[0],
                "layers": descs[1:],
            }
        ).encode()
        r = c.put(
            f"/v2/{repo}/manifests/{tag}",
            content=manifest,
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert r.status_code == 201, r.text
        return str(r.headers["docker-content-digest"])


def test_repos_tags_rm_and_gc(baepo_server: BaepoProcess, cli_env: dict[str, str]) -> None:
    repo = f"cli/app-{secrets.token_hex(3)}"
    layer = secrets.token_bytes(2048)
    digest = push_image(baepo_server, repo, "v1", layer)
    push_image(baepo_server, repo, "v2", secrets.token_bytes(1024))

    repos = json.loads(baepo("registry", "repos", "--json", env=cli_env).stdout)
    mine = [r for r in repos if r["name"] == repo]
    assert mine and mine[0]["tags"] == 2 and mine[0]["public"] is False
    table = baepo("registry", "repos", env=cli_env).stdout
    assert repo in table

    tags = json.loads(baepo("registry", "tags", repo, "--json", env=cli_env).stdout)
    assert [t["tag"] for t in tags] == ["v1", "v2"]
    assert tags[0]["digest"] == digest and tags[0]["pushed_by"] == "admin"

    done = baepo("registry", "rm", f"{repo}:v1", env=cli_env)
    assert done.returncode == 0, done.stdout + done.stderr
    tags = json.loads(baepo("registry", "tags", repo, "--json", env=cli_env).stdout)
    assert [t["tag"] for t in tags] == ["v2"]

    done = baepo("registry", "rm", f"{repo}@{digest}", env=cli_env)
    assert done.returncode == 0, done.stdout + done.stderr

    dry = json.loads(
        baepo("registry", "gc", "--dry-run", "--grace", "0", "--json", env=cli_env).stdout
    )
    layer_digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    assert layer_digest in dry["blobs"] and dry["dry_run"] is True
    with httpx.Client(base_url=baepo_server.url, auth=baepo_server.admin) as c:
        assert c.head(f"/v2/{repo}/blobs/{layer_digest}").status_code == 200  # dry run kept it
    out = baepo("registry", "gc", "--grace", "0", env=cli_env).stdout
    assert "freed" in out and layer_digest in out

    done = baepo("registry", "rm", repo, env=cli_env)
    assert done.returncode == 0
    repos = json.loads(baepo("registry", "repos", "--json", env=cli_env).stdout)
    assert repo not in [r["name"] for r in repos]


def test_errors_are_one_clear_line(
    baepo_server: BaepoProcess, cli_env: dict[str, str], tmp_path: Path
) -> None:
    missing = baepo("registry", "tags", "no/such-repo", env=cli_env)
    assert missing.returncode == 1
    assert "Traceback" not in missing.stderr + missing.stdout
    assert "no/such-repo" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1

    bad_name = baepo("registry", "rm", "UPPER/Case:tag", env=cli_env)
    assert bad_name.returncode == 1 and "Traceback" not in bad_name.stdout + bad_name.stderr

    wrong = baepo(
        "login",
        "--password-stdin",
        env={**cli_env, "BAEPO_CONFIG": str(tmp_path / "other.json")},
        stdin="nope\n",
    )
    assert wrong.returncode == 1
    assert "invalid username or password" in wrong.stderr

    down = baepo(
        "registry", "repos", env={**cli_env, "BAEPO_URL": f"http://127.0.0.1:{free_port()}"}
    )
    assert down.returncode == 1 and "cannot reach Baepo" in down.stderr

    anonymous = baepo("registry", "repos", env={**cli_env, "BAEPO_CONFIG": str(tmp_path / "none")})
    assert anonymous.returncode == 1 and "baepo login" in anonymous.stderr


def test_public_flag_and_tokens(baepo_server: BaepoProcess, cli_env: dict[str, str]) -> None:
    repo = f"cli/public-{secrets.token_hex(3)}"
    push_image(baepo_server, repo, "v1", secrets.token_bytes(64))
    assert httpx.get(f"{baepo_server.url}/v2/{repo}/tags/list").status_code == 401
    assert baepo("registry", "public", repo, env=cli_env).returncode == 0
    anon = httpx.get(f"{baepo_server.url}/v2/{repo}/tags/list")
    assert anon.status_code == 200 and anon.json()["tags"] == ["v1"]

    name = f"robot-{secrets.token_hex(3)}"
    secret = baepo("tokens", "create", name, "--repository", repo, env=cli_env).stdout.strip()
    assert secret.startswith("bp_")
    listed = json.loads(baepo("tokens", "ls", "--json", env=cli_env).stdout)
    assert any(t["name"] == name and t["repositories"] == [repo] for t in listed)
    ok = httpx.get(f"{baepo_server.url}/v2/{repo}/tags/list", auth=("token", secret))
    assert ok.status_code == 200
    assert baepo("tokens", "rm", name, env=cli_env).returncode == 0
    gone = httpx.get(f"{baepo_server.url}/v2/", auth=("token", secret))
    assert gone.status_code == 401


def test_names_cannot_walk_out_of_their_path(
    baepo_server: BaepoProcess, cli_env: dict[str, str]
) -> None:
    name = f"victim-{secrets.token_hex(3)}"
    assert baepo("tokens", "create", name, env=cli_env).returncode == 0
    done = baepo("services", "rm", f"../tokens/{name}", env=cli_env)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    listed = json.loads(baepo("tokens", "ls", "--json", env=cli_env).stdout)
    assert name in [t["name"] for t in listed]  # still there
    bad_url = baepo("services", "ls", env={**cli_env, "BAEPO_URL": "http://[::1"})
    assert bad_url.returncode == 1 and "cannot reach Baepo" in bad_url.stderr
