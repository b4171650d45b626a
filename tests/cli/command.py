"""The `baepo` command run as a person runs it: a process of its own, its output captured."""

from __future__ import annotations

import os
import subprocess
import sys


def baepo(
    *args: str, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`baepo *args` with `env` over this process's environment less its `BAEPO_*` settings
    (a token or config file of the user's is never used); `env` names the config file."""
    assert "BAEPO_CONFIG" in env, "a test keeps its CLI settings in a file of its own"
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("BAEPO_")}
    return subprocess.run(
        [sys.executable, "-m", "baepo", *args],
        env={**inherited, **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
