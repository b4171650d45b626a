"""`baepo services …` and `baepo tokens …` with owners and limits, as a person types them."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.command import baepo
from tests.conftest import BaepoProcess

pytestmark = pytest.mark.integration

HELLO = "baepo-test/hello:1"
"""A local image of the engine's (`scripts/test-images`): services run it without a push."""


def test_owners_and_tokens_limited_to_a_service(baepo_server: BaepoProcess, tmp_path: Path) -> None:
    admin = {"BAEPO_URL": baepo_server.url, "BAEPO_CONFIG": str(tmp_path / "admin.json")}
    admin["COLUMNS"] = "250"
    done = baepo("login", "--password-stdin", env=admin, stdin=baepo_server.password + "\n")
    assert done.returncode == 0, done.stderr
    dev, team = f"dev{secrets.token_hex(3)}", f"team{secrets.token_hex(3)}"
    done = baepo("users", "create", dev, "--password-stdin", env=admin, stdin="dev-password-1\n")
    assert done.returncode == 0, done.stderr
    image = f"{baepo_server.host}/{team}/nothing:1"  # never pushed: the operation fails, fine
    name = f"cli-{secrets.token_hex(3)}"
    done = baepo("services", "create", name, "--image", image, "--owner", team, env=admin)
    assert done.returncode == 0, done.stderr
    listed = baepo("services", "ls", env=admin)
    assert "OWNER" in listed.stdout and team in listed.stdout and name in listed.stdout

    user = {**admin, "BAEPO_CONFIG": str(tmp_path / "dev.json")}
    done = baepo("login", "--username", dev, "--password-stdin", env=user, stdin="dev-password-1\n")
    assert done.returncode == 0, done.stderr + done.stdout
    assert name not in baepo("services", "ls", env=user).stdout
    hidden = baepo("services", "describe", name, env=user)
    assert hidden.returncode == 1 and f"no service named '{name}'" in hidden.stderr
    assert "Traceback" not in hidden.stderr
    refused = baepo("services", "create", f"{name}-x", "--image", image, env=user)
    assert refused.returncode == 1 and "may not run" in refused.stderr
    other = baepo("services", "create", f"{name}-y", "--image", image, "--owner", team, env=user)
    assert other.returncode == 1 and "only an admin" in other.stderr

    made = baepo("tokens", "create", "ci", "--service", name, env=user)
    assert made.returncode == 0 and made.stdout.strip().startswith("bp_"), made.stderr
    tokens = baepo("tokens", "ls", env=user)
    assert "SERVICES" in tokens.stdout and name in tokens.stdout
    robot = {**user, "BAEPO_TOKEN": made.stdout.strip()}
    assert baepo("tokens", "ls", env=robot).returncode == 1
    assert baepo("services", "ls", env=robot).returncode == 0

    assert baepo("services", "rm", name, env=admin).returncode == 0


@pytest.fixture
def service(baepo_server: BaepoProcess, cli_env: dict[str, str]) -> Iterator[str]:
    """A running service (the local test image), removed after the test."""
    name = f"cli-{secrets.token_hex(3)}"
    made = baepo("services", "create", name, "--image", HELLO, "--wait", env=cli_env)
    assert made.returncode == 0, made.stdout + made.stderr
    yield name
    baepo("services", "rm", name, env=cli_env)


def test_describe_shows_env_without_markup(service: str, cli_env: dict[str, str]) -> None:
    changed = baepo("services", "update", service, "-e", "GREETING=[hi]", "--wait", env=cli_env)
    assert changed.returncode == 0, changed.stdout + changed.stderr
    described = baepo("services", "describe", service, env=cli_env).stdout
    assert "[bold]" not in described and "[/bold]" not in described
    assert re.search(r"^env +GREETING=\[hi\]$", described, re.MULTILINE), described


def test_piped_tables_print_whole_values(service: str, cli_env: dict[str, str]) -> None:
    narrow = {**cli_env, "COLUMNS": "80"}  # a pipe: no terminal, whatever its width
    listed = json.loads(baepo("services", "ops", service, "--json", env=narrow).stdout)
    table = baepo("services", "ops", service, env=narrow).stdout
    for op in listed:
        row = next(line for line in table.splitlines() if line.startswith(op["id"]))
        assert row.split()[1:3] == [op["kind"], op["status"]], table
        assert row.endswith(op["message"]), table


def test_an_operation_is_named_by_the_start_of_its_id(
    service: str, cli_env: dict[str, str]
) -> None:
    created = json.loads(baepo("services", "ops", service, "--json", env=cli_env).stdout)[-1]
    for given in (created["id"][:7], created["id"][:12] + "…", created["id"]):
        shown = baepo("services", "ops", service, given, env=cli_env)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.startswith("CREATE_SERVICE SUCCEEDED"), shown.stdout
    missing = baepo("services", "ops", service, "zz", env=cli_env)
    assert missing.returncode == 1
    assert missing.stderr.strip() == f"error: no operation of {service} starts with 'zz'"


def test_env_secrets_and_domains_are_emptied_with_an_empty_value(
    service: str, cli_env: dict[str, str]
) -> None:
    given = ("-e", "A=1", "--secret", "S=x", "--domain", f"{service}.example.test", "--wait")
    done = baepo("services", "update", service, *given, env=cli_env)
    assert done.returncode == 0, done.stdout + done.stderr
    emptied = ("--env", "", "--secret", "", "--domain", "", "--wait")
    done = baepo("services", "update", service, *emptied, env=cli_env)
    assert done.returncode == 0, done.stdout + done.stderr
    config = json.loads(baepo("services", "describe", service, "--json", env=cli_env).stdout)
    config = config["config"]
    assert (config["env"], config["secrets"], config["custom_domains"]) == ({}, {}, [])
    helped = baepo("services", "update", "--help", env={**cli_env, "COLUMNS": "300"}).stdout
    assert "'' empties it" in helped


def test_memory_follows_the_cpu_unless_given(
    baepo_server: BaepoProcess, cli_env: dict[str, str]
) -> None:
    name = f"cli-{secrets.token_hex(3)}"
    made = baepo("services", "create", name, "--image", HELLO, "--cpu", "0.25", env=cli_env)
    assert made.returncode == 0, made.stdout + made.stderr
    described = json.loads(baepo("services", "describe", name, "--json", env=cli_env).stdout)
    assert (described["config"]["cpu"], described["config"]["memory"]) == (0.25, 512)
    bigger = baepo("services", "update", name, "--cpu", "2", env=cli_env)
    assert bigger.returncode == 0, bigger.stdout + bigger.stderr
    described = json.loads(baepo("services", "describe", name, "--json", env=cli_env).stdout)
    assert (described["config"]["cpu"], described["config"]["memory"]) == (2.0, 4096)
    unread = baepo("services", "update", name, "--memory", "lots", env=cli_env)
    assert unread.returncode == 1
    assert "'lots' is not a memory size" in unread.stderr and "allowed" not in unread.stderr
    baepo("services", "rm", name, env=cli_env)


def test_a_failure_is_told_once(baepo_server: BaepoProcess, cli_env: dict[str, str]) -> None:
    name = f"cli-{secrets.token_hex(3)}"
    image = f"{baepo_server.host}/nobody/nothing:1"  # never pushed
    failed = baepo("services", "create", name, "--image", image, "--wait", env=cli_env)
    said = failed.stdout + failed.stderr
    assert failed.returncode == 1, said
    assert said.count("cannot pull") == 1 and said.count("manifest unknown") == 1, said
    assert failed.stderr.startswith(f"error: CREATE_SERVICE {name} FAILED"), said
    baepo("services", "rm", name, env=cli_env)
