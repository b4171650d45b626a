"""The systemd unit `baepo install` writes, and the systemctl calls that enable and remove it,
recorded instead of made: this machine's systemd is never touched (it may not even be PID 1)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from baepo.systemd import Systemd, SystemdError, engine_unit, exec_word, unit_text
from tests.components import missing

BAEPO_UP = [sys.executable, "-m", "baepo", "up", "--data-dir", "/var/lib/baepo"]


def systemd_words(line: str) -> list[str]:
    """How systemd splits an ExecStart= value (its quoting is shell-like for what
    `exec_word` writes), after undoing its `%%` and `$$`."""
    return shlex.split(line.replace("%%", "%").replace("$$", "$"))


@pytest.mark.parametrize(
    "word",
    ["plain", "/var/lib/baepo", "a b", 'say "hi"', "back\\slash", "50%", "$HOME", "", "é"],
)
def test_an_argument_reaches_baepo_as_it_was_given(word: str) -> None:
    assert systemd_words(exec_word(word)) == [word]


def test_a_control_character_cannot_go_into_a_unit() -> None:
    with pytest.raises(SystemdError, match="control character"):
        exec_word("two\nlines")


@pytest.mark.parametrize(
    ("docker_host", "unit"),
    [
        ("unix:///var/run/docker.sock", "docker.service"),
        ("unix:///run/docker.sock", "docker.service"),
        ("unix:///run/baepo-engine/docker.sock", None),
        ("tcp://10.0.0.5:2375", None),
    ],
)
def test_the_engine_unit_is_dockers_when_baepo_uses_its_socket(
    docker_host: str, unit: str | None
) -> None:
    assert engine_unit(docker_host) == unit


def unit_lines(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def test_the_unit_restarts_baepo_and_requires_the_engine() -> None:
    lines = unit_lines(unit_text(BAEPO_UP, "docker.service"))
    assert systemd_words(lines["ExecStart"]) == BAEPO_UP
    assert lines["Restart"] == "on-failure"
    assert lines["Requires"] == "docker.service"
    assert "docker.service" in lines["After"].split()
    assert lines["KillMode"] == "process"  # HAProxy and the services outlive a restart
    assert lines["WantedBy"] == "multi-user.target"


def test_without_an_engine_unit_the_unit_requires_none() -> None:
    lines = unit_lines(unit_text(BAEPO_UP, None))
    assert "Requires" not in lines
    assert lines["After"] == "network-online.target"


def test_systemd_finds_nothing_wrong_in_the_unit(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        missing("systemd-analyze is not installed (apt install systemd)")
    path = tmp_path / "baepo.service"
    path.write_text(unit_text([*BAEPO_UP, "--domain", "a b%"], "docker.service"))
    done = subprocess.run(
        ["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "baepo.service" not in done.stderr  # no warning about our unit


class Recorder:
    """systemctl, recorded; `refuse` names a verb that fails as systemd would."""

    def __init__(self, refuse: str = "") -> None:
        self.calls: list[list[str]] = []
        self.refuse = refuse

    def __call__(self, args: Sequence[str]) -> None:
        self.calls.append(list(args))
        if args[0] == self.refuse:
            raise SystemdError(f"systemctl {args[0]}: Failed to connect to bus: Host is down")


def test_install_writes_the_unit_then_enables_and_starts_it(tmp_path: Path) -> None:
    systemctl = Recorder()
    path = Systemd(tmp_path / "units", systemctl).install("unit text\n")
    assert path == tmp_path / "units" / "baepo.service"
    assert path.read_text() == "unit text\n"
    assert path.stat().st_mode & 0o777 == 0o644
    assert systemctl.calls == [["daemon-reload"], ["enable", "--now", "baepo.service"]]


def test_installing_again_restarts_baepo_with_the_new_unit(tmp_path: Path) -> None:
    systemctl = Recorder()
    systemd = Systemd(tmp_path, systemctl)
    systemd.install("first\n")
    systemctl.calls.clear()
    systemd.install("second\n")
    assert systemd.unit_path.read_text() == "second\n"
    assert systemctl.calls == [
        ["daemon-reload"],
        ["enable", "baepo.service"],
        ["restart", "baepo.service"],
    ]


def test_a_systemd_that_refuses_the_reload_is_left_without_the_unit(tmp_path: Path) -> None:
    systemd = Systemd(tmp_path, Recorder(refuse="daemon-reload"))
    with pytest.raises(SystemdError, match="Host is down"):
        systemd.install("unit text\n")
    assert not systemd.unit_path.exists()


def test_uninstall_stops_disables_and_removes_the_unit_only(tmp_path: Path) -> None:
    systemctl = Recorder()
    systemd = Systemd(tmp_path / "units", systemctl)
    systemd.install("unit text\n")
    systemctl.calls.clear()
    assert systemd.uninstall() == tmp_path / "units" / "baepo.service"
    assert not systemd.unit_path.exists()
    assert systemctl.calls == [["disable", "--now", "baepo.service"], ["daemon-reload"]]
    assert systemd.uninstall() is None  # nothing left to remove: no call
    assert len(systemctl.calls) == 2
