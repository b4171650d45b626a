"""`baepo autoscaling …` and `baepo services … --autoscaling`, as a person types them."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from tests.cli.command import baepo
from tests.conftest import BaepoProcess

pytestmark = pytest.mark.integration


def test_configurations_revisions_and_a_service_that_uses_one(
    baepo_server: BaepoProcess, tmp_path: Path
) -> None:
    env = {"BAEPO_URL": baepo_server.url, "BAEPO_CONFIG": str(tmp_path / "admin.json")}
    env["COLUMNS"] = "250"
    done = baepo("login", "--password-stdin", env=env, stdin=baepo_server.password + "\n")
    assert done.returncode == 0, done.stderr
    name = f"conf-{secrets.token_hex(3)}"
    sizes = ("--min-size", "0", "--max-size", "4", "--max-concurrency", "20")
    made = baepo("autoscaling", "create", name, *sizes, env=env)
    assert made.returncode == 0, made.stderr
    assert f"created {name}:1  min 0, max 4, max concurrency 20" in made.stdout
    again = baepo("autoscaling", "create", name, "--max-concurrency", "30", env=env)
    assert f"created {name}:2" in again.stdout, again.stderr
    listed = baepo("autoscaling", "list", env=env)
    assert listed.returncode == 0 and name in listed.stdout
    assert "DefaultConfiguration" in listed.stdout and "MAX CONCURRENCY" in listed.stdout
    described = baepo("autoscaling", "describe", name, env=env)
    assert described.returncode == 0, described.stderr
    assert "revisions" in described.stdout and "max_concurrency 30" in described.stdout

    service = f"cli-{secrets.token_hex(3)}"
    image = f"{baepo_server.host}/team/nothing:1"  # never pushed: the operation fails, fine
    created = baepo(
        "services", "create", service, "--image", image, "--autoscaling", f"{name}:1", env=env
    )
    assert created.returncode == 0, created.stderr
    shown = baepo("services", "describe", service, env=env)
    assert f"autoscaling     {name}:1" in shown.stdout
    assert "max_concurrency 20" in shown.stdout and "min_instances   0" in shown.stdout
    both = baepo(
        "services", "update", service, "--autoscaling", name, "--min-instances", "2", env=env
    )
    assert both.returncode == 1 and "comes from the autoscaling configuration" in both.stderr

    busy = baepo("autoscaling", "delete", f"{name}:1", env=env)
    assert busy.returncode == 1 and f"{name}:1 is used by {service}" in busy.stderr
    assert "Traceback" not in busy.stderr
    assert baepo("autoscaling", "delete", f"{name}:2", env=env).returncode == 0
    bad = baepo("autoscaling", "create", name, "--min-size", "30", env=env)
    assert bad.returncode == 1 and "min_size" in bad.stderr and "Traceback" not in bad.stderr
    wrong = baepo("autoscaling", "delete", f"{name}:two", env=env)
    assert wrong.returncode == 1 and "is not NAME or NAME:REVISION" in wrong.stderr
    default = baepo("autoscaling", "delete", "DefaultConfiguration", env=env)
    assert default.returncode == 1 and "built in" in default.stderr

    # (This server has no engine: the service's deletion never ends, and name:1 stays used.)
    assert baepo("services", "rm", service, env=env).returncode == 0
