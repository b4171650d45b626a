"""ECR's workflow with the real aws CLI (v1, botocore) against a real `baepo up`, as a team
moving from ECR runs it: only `--endpoint-url` and the access key change.

create-repository, get-login-password | docker login, docker push, describe-images;
put-image-tag-mutability, then a push over a tag is refused; put-lifecycle-policy and its
preview keep the 3 newest `release-*` and the one a service runs, and applying it expires the
rest while the service keeps answering; batch-delete-image.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clients import Docker
from tests.e2e.aws_cli import Aws
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.integration

KEEP_3_RELEASES = {
    "rules": [
        {
            "rulePriority": 1,
            "description": "keep the three newest releases",
            "selection": {
                "tagStatus": "tagged",
                "tagPatternList": ["release-*"],
                "countType": "imageCountMoreThan",
                "countNumber": 3,
            },
            "action": {"type": "expire"},
        }
    ]
}


@pytest.fixture
def images(stack: Stack) -> Iterator[list[str]]:
    """Five images that differ (a label each) built on baepo-test/hello:1."""
    names = [f"baepo-test/aws-release:{n}-{secrets.token_hex(2)}" for n in range(5)]
    for n, name in enumerate(names):
        dockerfile = f"FROM baepo-test/hello:1\nLABEL release={n}\n"
        stack.docker("build", "-q", "-t", name, "-", input=dockerfile)
    yield names
    stack.docker("rmi", "-f", *names, check=False)


def test_the_ecr_workflow_with_the_aws_cli(stack: Stack, images: list[str], tmp_path: Path) -> None:
    aws = Aws(stack, tmp_path)
    repository = f"admin/web-{secrets.token_hex(2)}"
    made = aws.ecr("create-repository", "--repository-name", repository)["repository"]
    assert made["repositoryUri"] == f"{stack.baepo.host}/{repository}"

    password = aws.run("ecr", "get-login-password").stdout.strip()
    docker = Docker(stack.docker.host, tmp_path / "docker")
    login = docker(
        "login", "--username", "AWS", "--password-stdin", stack.baepo.host, input=password
    )
    assert "Login Succeeded" in login.stdout
    refs = [f"{made['repositoryUri']}:release-{n + 1}" for n in range(5)]
    try:
        for image, ref in zip(images, refs, strict=True):
            docker("tag", image, ref)
            docker("push", ref)
        details = aws.ecr("describe-images", "--repository-name", repository)["imageDetails"]
        assert sorted(t for d in details for t in d["imageTags"]) == [
            f"release-{n}" for n in range(1, 6)
        ]
        assert all(d["imageSizeInBytes"] > 0 for d in details)

        # Immutable tags: a push of another image under release-1 is refused.
        aws.ecr(
            "put-image-tag-mutability",
            "--repository-name", repository,
            "--image-tag-mutability", "IMMUTABLE",
        )  # fmt: skip
        docker("tag", images[1], refs[0])
        refused = docker("push", refs[0], check=False)
        assert refused.returncode != 0
        assert (
            f"tag invalid: The image tag 'release-1' already exists in the '{repository}' "
            "repository and cannot be overwritten because the repository is immutable."
        ) in refused.stdout + refused.stderr

        # A service runs release-1: the policy keeps it besides the 3 newest releases.
        service = f"web-{secrets.token_hex(2)}"
        stack.cli("services", "create", service, "--image", refs[0], "--wait")
        aws.ecr(
            "put-lifecycle-policy",
            "--repository-name", repository,
            "--lifecycle-policy-text", json.dumps(KEEP_3_RELEASES),
        )  # fmt: skip
        started = aws.ecr("start-lifecycle-policy-preview", "--repository-name", repository)
        assert started["status"] == "COMPLETE"
        preview = aws.ecr("get-lifecycle-policy-preview", "--repository-name", repository)
        assert [r["imageTags"] for r in preview["previewResults"]] == [["release-2"]]
        assert preview["summary"]["expiringImageTotalCount"] == 1

        expired = json.loads(stack.cli("registry", "policy", "expire", repository, "--json").stdout)
        assert [row["tags"] for row in expired] == [["release-2"]]
        listed = aws.ecr("list-images", "--repository-name", repository)["imageIds"]
        assert sorted(i["imageTag"] for i in listed) == [
            "release-1",
            "release-3",
            "release-4",
            "release-5",
        ]
        stack.wait_for(f"{service}.localhost", "hello")

        deleted = aws.ecr(
            "batch-delete-image",
            "--repository-name", repository,
            "--image-ids", "imageTag=release-3",
        )  # fmt: skip
        assert [i["imageTag"] for i in deleted["imageIds"]] == ["release-3"]
        assert deleted["failures"] == []
        stack.cli("services", "rm", service, "--wait")
    finally:
        docker("rmi", "-f", *refs, check=False)
