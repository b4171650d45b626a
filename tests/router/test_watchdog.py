"""The router's watchdog (`router/watchdog.py`), on a real HAProxy: it soft-stops a HAProxy
whose Baepo stopped answering, but only when other routers serve, and goes once nothing is
left to watch."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from baepo.router.shared import WATCHDOG
from baepo.router.watchdog import master, watch
from tests.router.conftest import Plane

pytestmark = pytest.mark.integration


def closed_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/api/v1/health"


def test_alone_the_haproxy_is_kept_with_others_it_is_soft_stopped(
    plane: Plane, tmp_path: Path
) -> None:
    pidfile, peers = plane.router.paths.pidfile, tmp_path / "peers"
    pid = master(pidfile)
    assert pid is not None
    peers.write_text("0\n")
    ended: list[str] = []
    watching = threading.Thread(target=lambda: ended.append(watch(closed_url(), pidfile, peers, 1)))
    watching.start()
    time.sleep(3)  # Baepo gone for longer than the grace, but no other router: kept
    assert ended == [] and plane.router.heal()
    peers.write_text("1\n")
    watching.join(timeout=10)
    assert ended and "soft-stopped" in ended[0]
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(pid)


def alive(pid: int) -> bool:
    """Runs (an exited child of this process stays a zombie until it is reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def test_it_ends_when_neither_baepo_nor_the_haproxy_runs(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-I", str(WATCHDOG), "--health", closed_url(),
         "--pidfile", str(tmp_path / "none.pid"), "--peers", str(tmp_path / "peers")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0
    assert "neither Baepo nor its HAProxy runs" in done.stdout
