"""The workflow `baepo ci github` writes, run for real: its login, build-and-push and
deploy-and-wait scripts, taken from the YAML and run by bash with the environment the workflow
gives them, against a running Baepo, with the token limited to the service and its repository
that the workflow's comment says to make. A deploy that succeeds passes the job; one whose new
revision never gets healthy fails it, and the old revision keeps answering."""

from __future__ import annotations

import os
import secrets
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from baepo.pipelines.workflows import DEPLOY_STEP
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.integration


def run_job(document: dict[str, Any], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run the job's `run:` steps in order, as a runner would: bash, the job's env and the
    step's (secrets filled in from `env`), stopping at the first that fails."""
    job = document["jobs"]["deploy"]
    sha = env["GITHUB_SHA"]
    variables = {k: str(v).replace("${{ github.sha }}", sha) for k, v in job["env"].items()}
    output = []
    for step in job["steps"]:
        if "run" not in step:
            continue
        own = {
            k: env[k] if str(v).startswith("${{ secrets.") else str(v)
            for k, v in step.get("env", {}).items()
        }
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=cwd,
            env={**env, **variables, **own},
            capture_output=True,
            text=True,
            timeout=300,
        )
        output.append(f"--- {step['name']}\n{done.stdout}{done.stderr}")
        if done.returncode != 0:
            return done.returncode, "".join(output)
    return 0, "".join(output)


def test_the_workflow_deploys_with_a_limited_token_and_fails_a_broken_deploy(
    stack: Stack, tmp_path: Path
) -> None:
    name = f"ci-{secrets.token_hex(3)}"
    first = stack.push("baepo-test/hello:1", f"admin/{name}:1")
    stack.cli("services", "create", name, "--image", first, "--port", "8080", "--wait")

    written = tmp_path / "repo" / ".github" / "workflows" / "baepo.yml"
    made = stack.cli("ci", "github", name, "--output", str(written))
    assert f"wrote {written}" in made.stderr
    command = next(line for line in made.stderr.splitlines() if "baepo tokens create" in line)
    words = shlex.split(command.split(": ", 1)[1])
    assert words[:3] == ["baepo", "tokens", "create"]
    token = stack.cli(*words[1:]).stdout.strip()
    document = yaml.safe_load(written.read_text())
    assert document["jobs"]["deploy"]["steps"][-1]["name"] == DEPLOY_STEP
    again = stack.cli("ci", "github", name, "--output", str(written), check=False)
    assert again.returncode == 1 and "exists (--force replaces it)" in again.stderr
    assert stack.cli("ci", "github", name, "--output", "-").stdout == written.read_text()
    unknown = stack.cli("ci", "github", "no-such-service", "--output", "-", check=False)
    assert unknown.returncode == 1 and "Traceback" not in unknown.stderr

    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "DOCKER_HOST": stack.docker.host,
        "DOCKER_CONFIG": str(tmp_path / "runner-docker"),  # the runner's own, empty
        "DOCKER_BUILDKIT": "0",
        "BAEPO_USER": "admin",
        "BAEPO_TOKEN": token,
        "DEPLOY_TIMEOUT": "120",
    }
    repo = written.parents[2]
    (repo / "Dockerfile").write_text("FROM baepo-test/hello:2\n")
    code, output = run_job(document, {**env, "GITHUB_SHA": "a" * 40}, repo)
    print(output)
    assert code == 0, output
    assert "Login Succeeded" in output
    assert f"Deploying {stack.baepo.host}/admin/{name}:{'a' * 40} to {name}" in output
    assert "Deployed" in output
    stack.wait_for(f"{name}.localhost", "hello v2")

    (repo / "Dockerfile").write_text("FROM baepo-test/wrong-port:1\n")
    code, output = run_job(document, {**env, "GITHUB_SHA": "b" * 40}, repo)
    print(output)
    assert code == 1, output
    assert "::error::The deployment ended" in output
    assert "hello v2" in stack.https(f"{name}.localhost").text

    # The token deploys this service only.
    other = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
         "-H", f"Authorization: Bearer {token}", f"{stack.baepo.url}/api/v1/services/hello/pause"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert other.stdout in ("403", "404")
    stack.cli("services", "rm", name, "--wait")
