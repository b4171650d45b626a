"""`baepo install` and `baepo uninstall` as a person types them, with a systemctl that records
its calls (first on PATH) and a scratch unit directory: this machine's systemd is untouched."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture
def systemctl_log(tmp_path: Path) -> Path:
    """Where the fake systemctl writes its calls, one line each."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "systemctl.log"
    fake = bin_dir / "systemctl"
    fake.write_text(f'#!/bin/sh\necho "$*" >>{log}\n')
    fake.chmod(0o755)
    return log


def baepo(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
        "DOCKER_HOST": "unix:///var/run/docker.sock",
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "baepo", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def exec_start(unit: Path) -> list[str]:
    line = next(x for x in unit.read_text().splitlines() if x.startswith("ExecStart="))
    return shlex.split(line.removeprefix("ExecStart="))


def test_install_runs_baepo_up_with_the_flags_given(tmp_path: Path, systemctl_log: Path) -> None:
    units = tmp_path / "units"
    done = baepo(
        tmp_path,
        *("install", "--unit-dir", str(units)),
        *("--data-dir", "data", "--domain", "example.com", "--runtime-image", "python3=a:1"),
        *("--runtime-image", "nodejs18=b:1", "--webhook-private-sources"),
    )
    assert done.returncode == 0, done.stderr
    assert "journalctl -u baepo" in done.stdout
    argv = exec_start(units / "baepo.service")
    assert argv[argv.index("up") :] == [
        "up",
        *("--data-dir", str(tmp_path / "data")),  # absolute: the unit runs in /
        *("--domain", "example.com"),
        *("--runtime-image", "python3=a:1", "--runtime-image", "nodejs18=b:1"),
        "--webhook-private-sources",  # a flag stays a flag
        *("--docker-host", "unix:///var/run/docker.sock"),  # this shell's DOCKER_HOST
    ]
    assert "Requires=docker.service" in (units / "baepo.service").read_text()
    assert systemctl_log.read_text().splitlines() == [
        "daemon-reload",
        "enable --now baepo.service",
    ]


def test_a_flag_baepo_up_does_not_know_installs_nothing(
    tmp_path: Path, systemctl_log: Path
) -> None:
    done = baepo(tmp_path, "install", "--unit-dir", str(tmp_path), "--prot", "5000")
    assert done.returncode == 2
    assert "No such option: --prot" in done.stderr
    assert not (tmp_path / "baepo.service").exists()
    assert not systemctl_log.exists()


def test_dry_run_prints_the_unit_and_calls_nothing(tmp_path: Path, systemctl_log: Path) -> None:
    done = baepo(tmp_path, "install", "--dry-run", "--unit-dir", str(tmp_path), "--port", "5001")
    assert done.returncode == 0, done.stderr
    assert "--port 5001" in done.stdout and "Restart=on-failure" in done.stdout
    assert not (tmp_path / "baepo.service").exists()
    assert not systemctl_log.exists()


def test_uninstall_removes_the_unit_and_leaves_the_data(
    tmp_path: Path, systemctl_log: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "baepo.db").write_text("state")
    assert (
        baepo(tmp_path, "install", "--unit-dir", str(tmp_path), "--data-dir", "data").returncode
        == 0
    )
    done = baepo(tmp_path, "uninstall", "--unit-dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "baepo.service").exists()
    assert (data / "baepo.db").read_text() == "state"
    assert systemctl_log.read_text().splitlines()[-2:] == [
        "disable --now baepo.service",
        "daemon-reload",
    ]
    again = baepo(tmp_path, "uninstall", "--unit-dir", str(tmp_path))
    assert again.returncode == 0 and "nothing to remove" in again.stdout


def test_install_says_why_when_systemd_refuses(tmp_path: Path, systemctl_log: Path) -> None:
    (tmp_path / "bin" / "systemctl").write_text(
        "#!/bin/sh\necho 'System has not been booted with systemd as init system (PID 1).'"
        " >&2\nexit 1\n"
    )
    done = baepo(tmp_path, "install", "--unit-dir", str(tmp_path))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: systemctl daemon-reload: System has not been booted with systemd as init "
        "system (PID 1)."
    ]
    assert not (tmp_path / "baepo.service").exists()
