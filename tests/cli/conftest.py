"""A signed-in `baepo` for the CLI's tests, its settings in a file of the test's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.command import baepo
from tests.conftest import BaepoProcess


@pytest.fixture
def cli_env(baepo_server: BaepoProcess, tmp_path: Path) -> dict[str, str]:
    env = {
        "BAEPO_CONFIG": str(tmp_path / "cli.json"),
        "BAEPO_URL": baepo_server.url,
        "COLUMNS": "200",
    }
    done = baepo("login", "--password-stdin", env=env, stdin=baepo_server.password + "\n")
    assert done.returncode == 0, done.stderr + done.stdout
    assert "Signed in" in done.stdout
    assert (tmp_path / "cli.json").stat().st_mode & 0o777 == 0o600
    return env
