"""The HAProxy process Baepo owns: check, start (or adopt), reload, stop.

HAProxy runs in master-worker mode in the foreground of its own session
(`haproxy -W -db -f <cfg> -S <master socket> -p <pidfile>`), so it survives a restart of
Baepo, which then adopts it: the pid in the pidfile must be an `haproxy` whose command line
names our configuration and whose master CLI answers. Reloads go through the master CLI
(`reload`): the master re-executes itself, starts a worker on the new configuration and hands
it the listening sockets, while old workers finish their requests (bounded by
`hard-stop-after`). `stop()` only ever signals the master pid it started or adopted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from baepo.router.configuration import RouterSettings
from baepo.router.errors import ConfigInvalid, HAProxyUnavailable, ReloadFailed
from baepo.router.runtime import MasterCLI, ProcessList, RuntimeSocket, WorkerAPI

log = logging.getLogger(__name__)

_PID = re.compile(r"\[ALERT\]\s+\(\d+\)")
_MAX_SOCKET_PATH = 100  # sun_path is 108 bytes; HAProxy appends suffixes while rebinding


class HAProxyProcess:
    def __init__(self, settings: RouterSettings, startup_timeout: float = 15.0) -> None:
        self.settings = settings
        self.paths = settings.paths
        self.startup_timeout = startup_timeout
        self.master = MasterCLI(RuntimeSocket(self.paths.master_socket))
        self._glance = MasterCLI(RuntimeSocket(self.paths.master_socket, timeout=2.0))
        self.worker = WorkerAPI(RuntimeSocket(self.paths.stats_socket))
        self.pid: int | None = None
        self._popen: subprocess.Popen[bytes] | None = None
        self._log_from = 0  # where the log of the last start or reload begins

    def check(self, config: Path) -> None:
        """Validate a configuration file with `haproxy -c`; raises `ConfigInvalid`."""
        try:
            done = subprocess.run(
                [self.settings.haproxy_binary, "-c", "-q", "-f", str(config)],
                capture_output=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise HAProxyUnavailable(f"cannot run {self.settings.haproxy_binary}: {exc}") from exc
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode(errors="replace")
            raise ConfigInvalid(f"HAProxy rejects {config}: {_alerts(output)}", output)

    def running(self) -> bool:
        if self._popen is not None:
            return self._popen.poll() is None  # also reaps it
        # Adopted: not our child, so its pid may be reaped and reused by another process.
        return self.pid is not None and _alive(self.pid) and self._is_ours(self.pid)

    def adopt(self) -> bool:
        """Take over an HAProxy left running by a previous Baepo, if there is one of ours."""
        pid = self.adoptable()
        if pid is None:
            return False
        self.pid = pid
        log.info("adopted the running HAProxy (master pid %d)", pid)
        return True

    def adoptable(self) -> int | None:
        """The master pid of an HAProxy of ours that a previous Baepo left running, if any."""
        try:
            pid = int(self.paths.pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        if not self._is_ours(pid):
            return None
        try:
            procs = self.master.processes()
        except HAProxyUnavailable:
            return None
        if procs.master != pid or not procs.workers:
            return None
        return pid

    def start(self) -> None:
        for sock in (self.paths.master_socket, self.paths.stats_socket):
            if len(str(sock)) > _MAX_SOCKET_PATH:
                raise HAProxyUnavailable(
                    f"socket path {sock} is too long for a unix socket; set a shorter run_dir"
                )
        self.check(self.paths.config)
        self._mark_log()
        command = [
            self.settings.haproxy_binary,
            "-W",
            "-db",
            "-f",
            str(self.paths.config),
            "-S",
            f"{self.paths.master_socket},mode,600",
            "-p",
            str(self.paths.pidfile),
        ]
        try:
            with self.paths.log.open("ab") as out:
                self._popen = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=out,
                    start_new_session=True,  # outlives a Baepo restart; not hit by its Ctrl-C
                )
        except OSError as exc:
            raise HAProxyUnavailable(f"cannot start {command[0]}: {exc}") from exc
        self.pid = self._popen.pid
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._popen.poll() is not None:
                self.pid = None
                raise HAProxyUnavailable(f"HAProxy exited at start-up: {self.log_tail()}")
            if self._ready(None):
                return
            time.sleep(0.05)
        self.stop()
        raise HAProxyUnavailable(f"HAProxy did not come up in time: {self.log_tail()}")

    def reload(self) -> None:
        """Hitless reload onto the configuration file; raises `ReloadFailed` if it fails."""
        self.check(self.paths.config)
        self._mark_log()
        before = self.master.processes()
        self.master.reload()
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            try:
                now = self.master.processes()
            except HAProxyUnavailable:
                now = None  # the master is re-executing
            if now is not None:
                if now.failed_reloads > before.failed_reloads:
                    raise ReloadFailed(f"HAProxy could not reload: {self.log_tail()}")
                if now.reloads > before.reloads and self._ready(now):
                    return
            time.sleep(0.05)
        raise ReloadFailed(f"HAProxy did not finish reloading in time: {self.log_tail()}")

    def processes(self) -> ProcessList:
        return self.master.processes()

    def wait_for_leftovers(self, timeout: float = 2.0) -> None:
        """After the master died: wait (bounded) until its workers, which exit on their own,
        have let go of the listening ports, so that a new start does not find them taken."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._leftovers():
            time.sleep(0.02)

    def _leftovers(self) -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and self._is_ours(int(entry.name)) and _alive(int(entry.name)):
                found.append(int(entry.name))
        return found

    def old_worker_stats(self, pid: int, backend: str | None) -> list[dict[str, str]]:
        """`show stat` of an old worker (through the master), with a short timeout."""
        return self._glance.stats_of(pid, backend)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the HAProxy we started or adopted: soft-stop, then terminate, then kill."""
        pid = self.pid
        if pid is None:
            return
        for sig, wait in ((signal.SIGUSR1, timeout), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            # A child that already exited was reaped: its pid may be another process's now.
            if self._popen is not None and self._popen.poll() is not None:
                break
            if not self._is_ours(pid):
                break
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            if self._wait_exit(pid, wait):
                break
        self.pid = None
        self._popen = None

    def log_tail(self, lines: int = 8) -> str:
        """HAProxy's alerts since the last start or reload (a start that keeps failing
        says the same thing each time, not a growing history)."""
        try:
            with self.paths.log.open("rb") as f:
                f.seek(self._log_from)
                text = f.read().decode(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(_alerts(text).splitlines()[-lines:])

    def _mark_log(self) -> None:
        try:
            self._log_from = self.paths.log.stat().st_size
        except OSError:
            self._log_from = 0

    def _ready(self, procs: ProcessList | None) -> bool:
        """A worker is up and its stats socket answers (for `procs`, the newest worker)."""
        try:
            procs = procs or self.master.processes()
            if not procs.workers:
                return False
            info = self.worker.sock.send("show info")
        except HAProxyUnavailable:
            return False
        return f"Pid: {procs.workers[0]}\n" in info

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._popen is not None:
                if self._popen.poll() is not None:
                    return True
            elif not _alive(pid):
                return True
            time.sleep(0.05)
        return False

    def _is_ours(self, pid: int) -> bool:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return (
            bool(cmdline)
            and cmdline[0].endswith(b"haproxy")
            and (str(self.paths.config).encode() in cmdline)
        )


def running_haproxy(settings: RouterSettings) -> int | None:
    """The master pid of the HAProxy a previous Baepo left running on these settings (the next
    start adopts it, so the ports it listens on are not taken by a stranger), if any."""
    return HAProxyProcess(settings).adoptable()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    state = ""
    with contextlib.suppress(OSError, IndexError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"


def _alerts(output: str) -> str:
    """The ALERT lines of HAProxy's output (or all of it, when it has none)."""
    # Without the pid HAProxy puts in each line: the same failure reads the same every time.
    alerts = [_PID.sub("[ALERT]", line) for line in output.splitlines() if "[ALERT]" in line]
    return "\n".join(alerts) if alerts else output.strip()
