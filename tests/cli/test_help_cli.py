"""`baepo --help` everywhere, shell completion and `baepo version`: what a newcomer reads first."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import baepo as package
from baepo.cli.main import app
from tests.cli.command import baepo

PYTHON_TYPES = re.compile(r"<(bool|str|int|float|path|list\[\w+\]|\w+ range)>")


def command_paths(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        if not sub.hidden:
            yield from command_paths(sub, (*path, name))


def help_of(path: tuple[str, ...]) -> str:
    done = CliRunner().invoke(app, [*path, "--help"], prog_name="baepo", env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    return done.output


def test_help_reads_as_words_not_python_types() -> None:
    paths = list(command_paths(typer.main.get_command(app)))
    assert ("services", "ops") in paths and len(paths) > 40
    for path in paths:
        shown = help_of(path)
        assert not PYTHON_TYPES.search(shown), (path, shown)
        usage = next(line for line in shown.splitlines() if "Usage:" in line)
        assert "{" not in usage, (path, usage)
    usage = next(line for line in help_of(("services", "ops")).splitlines() if "Usage:" in line)
    assert usage.strip() == "Usage: baepo services ops [OPTIONS] NAME [OPERATION]"
    flags = help_of(("services", "update"))
    assert re.search(r"--port +INTEGER +Port the app listens on", flags), flags
    assert re.search(r"--wait +Follow the operation", flags), flags


def test_shell_completion_is_offered(tmp_path: Path) -> None:
    env = {"BAEPO_CONFIG": str(tmp_path / "cli.json"), "COLUMNS": "200"}
    assert "--install-completion" in baepo("--help", env=env).stdout
    # Typer names the shell by finding it among the process's parents (shellingham), as in a
    # user's terminal; a CI runner may have none, so bash runs it here (`; true`: not exec'd).
    script = subprocess.run(
        ["bash", "-c", f"{shlex.quote(sys.executable)} -m baepo --show-completion; true"],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("BAEPO_")}, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "complete -o default -F _baepo_completion baepo" in (script.stdout)
    asked = {**env, "_BAEPO_COMPLETE": "complete_bash", "COMP_WORDS": "baepo services up"}
    completed = baepo(env={**asked, "COMP_CWORD": "2"})
    assert completed.stdout.split() == ["update"], completed.stdout + completed.stderr


@pytest.mark.parametrize("args", [("version",), ("--version",)])
def test_version(args: tuple[str, ...], tmp_path: Path) -> None:
    shown = baepo(*args, env={"BAEPO_CONFIG": str(tmp_path / "cli.json")})
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == f"baepo {package.__version__}\n"
