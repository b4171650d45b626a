"""Baepo as a systemd service: the unit `baepo install` writes and the systemctl calls that
enable it (`baepo uninstall` undoes both).

    /etc/systemd/system/baepo.service
        ExecStart   this environment's `baepo up` with the flags given to `baepo install`
                    (paths made absolute, the engine's address written out)
        Restart     on-failure, 2 s apart
        Requires    the engine's unit, when systemd runs the engine (After= it too)
        KillMode    process

Choices, and why:
- KillMode=process: a stop or a restart signals `baepo up` alone, as Ctrl-C does, so HAProxy
  and the services' containers keep serving and the next start adopts them. systemd's default
  (control-group) would kill HAProxy, a child of `baepo up`, at every restart.
- The engine: on a machine that runs systemd, installing Debian's docker.io enables and starts
  docker.service, and scripts/engine then finds its socket (/var/run/docker.sock): the unit
  requires docker.service and starts after it. Baepo writes no unit for the private dockerd
  scripts/engine starts when no engine answers: that path is for machines without systemd,
  where there is no unit to write. Another engine (a TCP address, Podman's socket) is named
  with --docker-host, and whoever runs it starts it at boot.
- No password in the unit (a unit file is world-readable): the first admin is made by the
  first `baepo up` (BAEPO_ADMIN_PASSWORD, or a generated password printed once: in the journal
  when that first start is the service's).
- Uninstall stops and disables the unit and removes it; the data directory stays, and the
  router and the containers keep serving as after any stop, until `baepo up` adopts them.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from baepo.keyfiles import write_private

UNIT = "baepo.service"
UNIT_DIR = Path("/etc/systemd/system")
ENGINE_UNITS = {
    "unix:///var/run/docker.sock": "docker.service",
    "unix:///run/docker.sock": "docker.service",
}
"""Engine addresses whose engine systemd runs, and the unit that runs it."""

_PLAIN = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")


class SystemdError(Exception):
    """systemctl refused, or the unit could not be written (shown as one line)."""


def engine_unit(docker_host: str) -> str | None:
    """The unit that runs the engine at `docker_host`, if systemd runs it."""
    return ENGINE_UNITS.get(docker_host.rstrip("/"))


def exec_word(word: str) -> str:
    """One argument as an ExecStart= line must spell it: `%` and `$` doubled (systemd would
    expand specifiers and variables), quoted when it holds anything but plain characters."""
    if any(ord(c) < 32 for c in word):
        raise SystemdError(f"{word!r}: a control character cannot go into a unit")
    escaped = word.replace("%", "%%").replace("$", "$$")
    if _PLAIN.fullmatch(word):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unit_text(argv: Sequence[str], engine: str | None) -> str:
    """The text of baepo.service running `argv`, after and requiring `engine` if any."""
    after = ["network-online.target", *([engine] if engine else [])]
    lines = [
        "# Written by `baepo install`; `baepo uninstall` removes it.",
        "[Unit]",
        "Description=Baepo: registry, services and pipelines",
        "Wants=network-online.target",
        f"After={' '.join(after)}",
        *([f"Requires={engine}"] if engine else []),
        "",
        "[Service]",
        f"ExecStart={' '.join(exec_word(word) for word in argv)}",
        "Restart=on-failure",
        "RestartSec=2s",
        "KillMode=process",
        "SyslogIdentifier=baepo",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ]
    return "\n".join(lines)


def run_systemctl(args: Sequence[str]) -> None:
    """`systemctl ARGS`; a refusal becomes a SystemdError with systemctl's own words."""
    try:
        done = subprocess.run(
            ["systemctl", *args], capture_output=True, text=True, timeout=120, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SystemdError(f"systemctl {' '.join(args)}: {exc}") from exc
    if done.returncode != 0:
        said = done.stderr.strip() or done.stdout.strip() or f"exit {done.returncode}"
        raise SystemdError(f"systemctl {' '.join(args)}: {said.splitlines()[-1]}")


class Systemd:
    """The machine's systemd as `baepo install` uses it: where the unit goes and how
    systemctl is called, both replaceable (tests write into a scratch directory and record
    the calls instead of enabling anything)."""

    def __init__(
        self,
        unit_dir: Path = UNIT_DIR,
        systemctl: Callable[[Sequence[str]], None] = run_systemctl,
    ) -> None:
        self.unit_dir = unit_dir
        self.systemctl = systemctl

    @property
    def unit_path(self) -> Path:
        return self.unit_dir / UNIT

    def install(self, text: str) -> Path:
        """Write the unit, then enable and start it. A systemd that refuses the reload (not
        running here, say) gets no unit left behind that it never read."""
        previous = self.unit_path.read_text() if self.unit_path.exists() else None
        try:
            self.unit_dir.mkdir(parents=True, exist_ok=True)
            write_private(self.unit_path, text.encode(), mode=0o644)
            os.chmod(self.unit_path, 0o644)  # an older file's mode stays otherwise
        except OSError as exc:
            raise SystemdError(f"cannot write {self.unit_path}: {exc}") from exc
        try:
            self.systemctl(["daemon-reload"])
        except SystemdError:
            if previous is None:
                self.unit_path.unlink(missing_ok=True)
            else:
                write_private(self.unit_path, previous.encode(), mode=0o644)
            raise
        if previous is None:
            self.systemctl(["enable", "--now", UNIT])
        else:
            self.systemctl(["enable", UNIT])
            self.systemctl(["restart", UNIT])  # the new flags take effect now
        return self.unit_path

    def uninstall(self) -> Path | None:
        """Stop and disable the unit, remove it; None if there was none."""
        if not self.unit_path.exists():
            return None
        self.systemctl(["disable", "--now", UNIT])
        try:
            self.unit_path.unlink()
        except OSError as exc:
            raise SystemdError(f"cannot remove {self.unit_path}: {exc}") from exc
        self.systemctl(["daemon-reload"])
        return self.unit_path
