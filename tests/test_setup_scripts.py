"""What the set-up scripts install: `scripts/setup` (run by `scripts/up`) only what running
Baepo needs, `scripts/setup-test` (run by `scripts/test`) the test and benchmark tools, and
`scripts/apt-install` only what is missing.

The proof on a fresh machine is `scripts/fresh-debian`: Debian 12 from debootstrap, where
`scripts/setup` runs twice (the first run installs no test tool, the second nothing)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

from tests.components import COMMANDS, ROOT

TEST_TOOLS = {
    "podman",
    "nginx-light",
    "wrk",
    "pebble",
    "docker-registry",
    "skopeo",
    "shellcheck",
    "jq",
    "nodejs",
    "npm",
    "chromium",
    "postgresql",
}
"""Debian packages only the tests and benchmarks use (issue 12: `./scripts/up` installs none)."""


def packages_named_by(script: str) -> set[str]:
    """The Debian packages a set-up script hands to scripts/apt-install."""
    text = (ROOT / "scripts" / script).read_text().replace("\\\n", " ")
    found: set[str] = set()
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if words[:1] != ["scripts/apt-install"]:
            continue
        words = words[1:]
        while words:
            word = words.pop(0)
            if word == "--stop":
                words.pop(0)
            elif not word.startswith("--"):
                found.add(word.partition(":")[2] or word)
    return found


def test_running_baepo_installs_no_test_tool() -> None:
    runtime = packages_named_by("setup")
    assert {"docker.io", "haproxy", "git", "busybox-static", "debootstrap"} <= runtime
    assert runtime & TEST_TOOLS == set()
    assert packages_named_by("setup-test") >= TEST_TOOLS


def test_every_tool_the_tests_use_is_installed_by_a_set_up_script() -> None:
    named = packages_named_by("setup") | packages_named_by("setup-test")
    wanted = {
        word
        for package in COMMANDS.values()
        for word in package.split()
        if re.fullmatch(r"[a-z0-9][a-z0-9.+-]+", word)
    }
    wanted -= {"containerd", "comes", "with", "runs"}  # containerd comes with docker.io
    assert wanted - named == set()


def fake_tools(bin_dir: Path, installed: set[str]) -> Path:
    """apt-get, dpkg-query and systemctl that write their calls to a log; dpkg-query says
    the `installed` packages are installed."""
    log = bin_dir / "calls.log"
    bin_dir.mkdir()
    for tool in ("apt-get", "systemctl"):
        (bin_dir / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >>{log}\n')
    listed = " ".join(sorted(installed))
    (bin_dir / "dpkg-query").write_text(
        f'#!/bin/sh\ncase " {listed} " in *" $4 "*) printf installed;; *) exit 1;; esac\n'
    )
    for path in bin_dir.iterdir():
        path.chmod(0o755)
    return log


def apt_install(bin_dir: Path, *wants: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "scripts" / "apt-install"), *wants],
        env={**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )


def test_apt_install_installs_only_what_is_missing_in_one_call(tmp_path: Path) -> None:
    log = fake_tools(tmp_path / "bin", installed={"pkg-listed"})
    done = apt_install(
        tmp_path / "bin",
        *("--stop", "some.service"),
        *("no-such-command-here:pkg-b", "sh:pkg-found", "pkg-listed", "pkg-a"),
    )
    assert done.stderr.splitlines()[0] == "installing pkg-a pkg-b"
    assert log.read_text().splitlines() == [
        "apt-get update -q",
        "apt-get install -y -q --no-install-recommends pkg-a pkg-b",
        "systemctl disable --now some.service",
    ]


def test_apt_install_does_nothing_when_nothing_is_missing(tmp_path: Path) -> None:
    log = fake_tools(tmp_path / "bin", installed={"pkg-listed"})
    done = apt_install(tmp_path / "bin", "--recommends", "sh:pkg-found", "pkg-listed")
    assert (done.stdout, done.stderr) == ("", "")
    assert not log.exists()


def test_apt_install_installs_recommended_packages_when_asked(tmp_path: Path) -> None:
    log = fake_tools(tmp_path / "bin", installed=set())
    apt_install(tmp_path / "bin", "--recommends", "no-such-command-here:pkg-a")
    assert "apt-get install -y -q pkg-a" in log.read_text().splitlines()
