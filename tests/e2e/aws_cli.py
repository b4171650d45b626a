"""The real aws CLI (v1, botocore) pointed at a running Baepo with one of its access keys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.components import missing
from tests.e2e.conftest import Stack


class Aws:
    """The aws CLI with a Baepo access key, its own (empty) config files, at Baepo's URL."""

    def __init__(self, stack: Stack, root: Path) -> None:
        self.command = Path(sys.executable).parent / "aws"
        if not self.command.exists():
            missing("the aws CLI (the awscli package: uv sync)")
        made = stack.cli("access-keys", "create").stdout.splitlines()
        keys = dict(line.split("=", 1) for line in made)
        (root / "config").write_text("[default]\nregion = us-east-1\n")
        (root / "credentials").write_text("")
        self.url = stack.baepo.url
        self.env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": keys["AWS_ACCESS_KEY_ID"],
            "AWS_SECRET_ACCESS_KEY": keys["AWS_SECRET_ACCESS_KEY"],
            "AWS_CONFIG_FILE": str(root / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(root / "credentials"),
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(self.command), "--endpoint-url", self.url, "--output", "json", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)}:\n{done.stdout}{done.stderr}")
        return done

    def ecr(self, *args: str) -> Any:
        return json.loads(self.run("ecr", *args).stdout or "{}")

    def apprunner(self, *args: str) -> Any:
        return json.loads(self.run("apprunner", *args).stdout or "{}")
