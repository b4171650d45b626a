"""`baepo registry policy immutable|mutable|show` against a real server, and the docker CLI:
a second push of a tag with another image is refused with ECR's message once tags are
immutable, and goes through again once they are mutable."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from tests.cli.command import baepo
from tests.cli.test_registry_cli import push_image
from tests.clients import Docker, docker_host
from tests.conftest import BaepoProcess

pytestmark = pytest.mark.integration

KEEP_3_RELEASES = json.dumps(
    {
        "rules": [
            {
                "rulePriority": 1,
                "selection": {
                    "tagStatus": "tagged",
                    "tagPrefixList": ["release-"],
                    "countType": "imageCountMoreThan",
                    "countNumber": 3,
                },
                "action": {"type": "expire"},
            }
        ]
    }
)


def test_immutable_tags_refuse_a_docker_push_over_a_tag(
    baepo_server: BaepoProcess, cli_env: dict[str, str], tmp_path: Path
) -> None:
    docker = Docker(docker_host(), tmp_path / "docker")
    docker(
        "login", baepo_server.host, "-u", "admin", "--password-stdin", input=baepo_server.password
    )
    repository = f"admin/immutable-{secrets.token_hex(3)}"
    ref = f"{baepo_server.host}/{repository}:v1"
    try:
        docker("tag", "baepo-test/hello:1", ref)
        docker("push", ref)

        made = baepo(
            "registry", "policy", "immutable", repository, "--except", "latest", env=cli_env
        )
        assert made.returncode == 0, made.stderr
        assert "tags are immutable (except latest)" in made.stdout
        shown = json.loads(
            baepo("registry", "policy", "show", repository, "--json", env=cli_env).stdout
        )
        assert shown["immutable_tags"] is True and shown["tag_exceptions"] == ["latest"]

        docker("tag", "baepo-test/hello:2", ref)
        refused = docker("push", ref, check=False)
        assert refused.returncode != 0
        assert (
            f"tag invalid: The image tag 'v1' already exists in the '{repository}' repository "
            "and cannot be overwritten because the repository is immutable."
        ) in refused.stderr + refused.stdout

        assert baepo("registry", "policy", "mutable", repository, env=cli_env).returncode == 0
        docker("push", ref)
    finally:
        docker("rmi", "-f", ref, check=False)


def test_only_a_repositorys_owner_changes_its_policies(
    baepo_server: BaepoProcess, cli_env: dict[str, str]
) -> None:
    missing = baepo("registry", "policy", "immutable", "admin/none-such", env=cli_env)
    assert missing.returncode != 0 and "no repository" in missing.stderr
    with baepo_server.api() as admin:
        name = f"dev{secrets.token_hex(3)}"
        admin.post("/api/v1/users", json={"name": name, "password": "dev-password-1"})
    baepo_server.make_public("admin/shared")
    dev_env = {**cli_env, "BAEPO_CONFIG": cli_env["BAEPO_CONFIG"] + ".dev"}
    assert (
        baepo(
            "login", "-u", name, "--password-stdin", env=dev_env, stdin="dev-password-1\n"
        ).returncode
        == 0
    )
    shown = baepo("registry", "policy", "show", "admin/shared", env=dev_env)
    assert shown.returncode == 0 and "tags are mutable" in shown.stdout  # public: readable
    refused = baepo("registry", "policy", "immutable", "admin/shared", env=dev_env)
    assert refused.returncode != 0 and "may not change" in refused.stderr


def test_a_lifecycle_policy_previewed_and_applied(
    baepo_server: BaepoProcess, cli_env: dict[str, str], tmp_path: Path
) -> None:
    repository = f"admin/releases-{secrets.token_hex(3)}"
    for n in range(5):
        push_image(baepo_server, repository, f"release-{n}", secrets.token_bytes(64))
    policy = tmp_path / "policy.json"
    policy.write_text(KEEP_3_RELEASES)
    made = baepo("registry", "policy", "lifecycle", repository, "--file", str(policy), env=cli_env)
    assert made.returncode == 0, made.stderr
    assert "lifecycle policy (last applied: not yet)" in made.stdout

    previewed = baepo("registry", "policy", "preview", repository, "--json", env=cli_env)
    assert sorted(row["tags"][0] for row in json.loads(previewed.stdout)) == [
        "release-0",
        "release-1",
    ]
    expired = baepo("registry", "policy", "expire", repository, env=cli_env)
    assert expired.returncode == 0 and "2 images expired" in expired.stdout
    tags = json.loads(baepo("registry", "tags", repository, "--json", env=cli_env).stdout)
    assert sorted(row["tag"] for row in tags) == ["release-2", "release-3", "release-4"]

    bad = tmp_path / "bad.json"
    bad.write_text('{"rules": [{"rulePriority": 1}]}')
    refused = baepo("registry", "policy", "lifecycle", repository, "--file", str(bad), env=cli_env)
    assert refused.returncode != 0 and "Lifecycle policy validation failure" in refused.stderr
    removed = baepo("registry", "policy", "lifecycle", repository, "--remove", env=cli_env)
    assert removed.returncode == 0 and "no lifecycle policy" in removed.stdout
