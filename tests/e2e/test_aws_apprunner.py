"""App Runner's workflow with the real aws CLI (v1, botocore) against a real `baepo up`, as a
team moving from App Runner runs it (boto3 reads it too): only `--endpoint-url` and the access
key change.

aws ecr create-repository, get-login-password | docker login, docker push; aws apprunner
create-service from the pushed image, describe-service until RUNNING, the URL answers; a new
image under the same tag and start-deployment; list-operations; pause-service (the URL answers
the paused page), resume-service; delete-service. The aws CLI parses every answer with
botocore's model, and validates every request's parameters before it is sent.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]  # boto3 ships no type information
import pytest

from tests.clients import Docker
from tests.e2e.aws_cli import Aws
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.integration


def wait_status(aws: Aws, arn: str, status: str, timeout: float = 180) -> dict[str, Any]:
    """describe-service until its Status is `status`; the service then."""
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while time.monotonic() < deadline:
        service: dict[str, Any] = aws.apprunner("describe-service", "--service-arn", arn)["Service"]
        if not seen or seen[-1] != service["Status"]:
            seen.append(service["Status"])
        if service["Status"] == status:
            return service
        time.sleep(0.5)
    raise AssertionError(f"{arn} never {status}; statuses seen: {seen}")


def test_the_app_runner_workflow_with_the_aws_cli(stack: Stack, tmp_path: Path) -> None:
    aws = Aws(stack, tmp_path)
    name = f"web-{secrets.token_hex(3)}"
    made = aws.ecr("create-repository", "--repository-name", f"admin/{name}")["repository"]
    docker = Docker(stack.docker.host, tmp_path / "docker")
    password = aws.run("ecr", "get-login-password").stdout.strip()
    docker("login", "--username", "AWS", "--password-stdin", stack.baepo.host, input=password)
    image = f"{made['repositoryUri']}:live"
    docker("tag", "baepo-test/hello:1", image)
    try:
        docker("push", image)
        source = {
            "ImageRepository": {
                "ImageIdentifier": image,
                "ImageRepositoryType": "ECR",
                "ImageConfiguration": {"Port": "8080"},
            },
            "AutoDeploymentsEnabled": False,
        }
        created = aws.apprunner(
            "create-service",
            "--service-name", name,
            "--source-configuration", json.dumps(source),
            "--instance-configuration", "Cpu=1 vCPU,Memory=2 GB",
            "--tags", "Key=team,Value=web",
        )  # fmt: skip
        arn = created["Service"]["ServiceArn"]
        assert arn.startswith("arn:aws-baepo:apprunner:us-east-1:")
        assert created["Service"]["Status"] == "OPERATION_IN_PROGRESS"

        running = wait_status(aws, arn, "RUNNING")
        url = running["ServiceUrl"]
        host = url.split(":")[0]
        assert host == f"{name}.localhost"
        assert running["SourceConfiguration"]["ImageRepository"]["ImageIdentifier"] == image
        assert running["InstanceConfiguration"] == {"Cpu": "1024", "Memory": "2048"}
        stack.wait_for(host, "hello v1")
        listed = aws.apprunner("list-services")["ServiceSummaryList"]
        assert [s["ServiceArn"] for s in listed if s["ServiceName"] == name] == [arn]
        # boto3 reads the same service (its own parser and the model's validation).
        client = boto3.client(
            "apprunner",
            endpoint_url=stack.baepo.url,
            region_name="us-east-1",
            aws_access_key_id=aws.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=aws.env["AWS_SECRET_ACCESS_KEY"],
        )
        assert client.describe_service(ServiceArn=arn)["Service"]["Status"] == "RUNNING"
        tags = aws.apprunner("list-tags-for-resource", "--resource-arn", arn)["Tags"]
        assert tags == [{"Key": "team", "Value": "web"}]

        # A new image under the same tag: start-deployment takes it, as App Runner's does.
        docker("tag", "baepo-test/hello:2", image)
        docker("push", image)
        deployment = aws.apprunner("start-deployment", "--service-arn", arn)["OperationId"]
        stack.wait_for(host, "hello v2", timeout=180)
        wait_status(aws, arn, "RUNNING")
        operations = aws.apprunner("list-operations", "--service-arn", arn)["OperationSummaryList"]
        assert [(o["Type"], o["Status"]) for o in operations] == [
            ("START_DEPLOYMENT", "SUCCEEDED"),
            ("CREATE_SERVICE", "SUCCEEDED"),
        ]
        assert operations[0]["Id"] == deployment
        assert all(o["TargetArn"] == arn for o in operations)

        aws.apprunner("pause-service", "--service-arn", arn)
        wait_status(aws, arn, "PAUSED")
        paused = stack.https(host)
        assert paused.status_code == 503
        assert "paused" in paused.text
        aws.apprunner("resume-service", "--service-arn", arn)
        wait_status(aws, arn, "RUNNING")
        stack.wait_for(host, "hello v2")

        deleted = aws.apprunner("delete-service", "--service-arn", arn)["Service"]
        assert deleted["Status"] == "OPERATION_IN_PROGRESS"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            gone = aws.run("apprunner", "describe-service", "--service-arn", arn, check=False)
            if gone.returncode != 0:
                break
            time.sleep(0.5)
        assert "ResourceNotFoundException" in gone.stderr
        listed = aws.apprunner("list-services")["ServiceSummaryList"]
        assert name not in [s["ServiceName"] for s in listed]
    finally:
        docker("rmi", "-f", image, check=False)


def test_a_service_made_with_app_runners_defaults_follows_its_tag(
    stack: Stack, tmp_path: Path
) -> None:
    """Only the image named (no port, no auto-deployment setting, no health check): port 8080
    and a TCP check, and a push of the tag deploys it, as App Runner's defaults do for ECR."""
    aws = Aws(stack, tmp_path)
    name = f"plain-{secrets.token_hex(3)}"
    image = f"{stack.baepo.host}/admin/{name}:live"
    stack.push("baepo-test/hello:1", f"admin/{name}:live")
    try:
        source = {"ImageRepository": {"ImageIdentifier": image, "ImageRepositoryType": "ECR"}}
        created = aws.apprunner(
            "create-service", "--service-name", name, "--source-configuration", json.dumps(source)
        )
        arn = created["Service"]["ServiceArn"]
        running = wait_status(aws, arn, "RUNNING")
        assert running["SourceConfiguration"]["AutoDeploymentsEnabled"] is True
        assert running["SourceConfiguration"]["ImageRepository"]["ImageConfiguration"]["Port"] == (
            "8080"
        )
        assert running["HealthCheckConfiguration"]["Protocol"] == "TCP"
        host = running["ServiceUrl"].split(":")[0]
        stack.wait_for(host, "hello v1")
        stack.push("baepo-test/hello:2", f"admin/{name}:live")
        stack.wait_for(host, "hello v2", timeout=180)
        aws.apprunner("delete-service", "--service-arn", arn)
    finally:
        stack.docker("rmi", "-f", image, check=False)
