"""`baepo users …` and passwords without a terminal, as a script runs them."""

from __future__ import annotations

import json
import secrets

import pytest

from tests.cli.command import baepo

pytestmark = pytest.mark.integration


def test_without_a_terminal_the_password_comes_from_stdin(cli_env: dict[str, str]) -> None:
    name = f"dev{secrets.token_hex(3)}"
    for command in (["users", "create", name], ["login", "-u", name]):
        refused = baepo(*command, env=cli_env, stdin="dev-password-1\n")
        assert refused.returncode == 1
        assert refused.stderr.splitlines() == [
            "error: no terminal to ask for the password: give it on stdin with --password-stdin"
        ], refused.stderr
    made = baepo("users", "create", name, "--password-stdin", env=cli_env, stdin="dev-password-1\n")
    assert made.returncode == 0, made.stderr
    empty = baepo("users", "create", f"{name}x", "--password-stdin", env=cli_env, stdin="")
    assert empty.returncode == 1 and "no password on stdin" in empty.stderr
    users = json.loads(baepo("users", "ls", "--json", env=cli_env).stdout)
    assert name in [u["name"] for u in users] and f"{name}x" not in [u["name"] for u in users]
    assert baepo("users", "rm", name, env=cli_env).returncode == 0
