"""The test Docker Swarm (`scripts/swarm-cluster`) for the tests that need one.

`swarm_cluster()` starts it for a block unless it already runs, and takes it down after the
block if it started it (also when the block fails, or the start failed half-way). Where it
cannot start, the tests skip, or fail when the real thing is required (tests/components.py).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.components import missing

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "swarm-cluster"
MANAGER = "unix:///run/baepo-swarm/node1/docker.sock"
HOST_ADDRESS = "10.231.0.1"
"""This machine's address on the nodes' bridge: where they reach a registry."""


def node_socket(node: int) -> str:
    return f"unix:///run/baepo-swarm/node{node}/docker.sock"


WORKER_ENGINES = {f"baepo-swarm-{n}": node_socket(n) for n in (2, 3)}
"""The workers' engines by node hostname (`SwarmEngine`'s `node_engines`): where their
instances' usage is read; the manager's is the manager's socket."""


def cluster(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), command], capture_output=True, text=True, timeout=300, check=False
    )


@contextmanager
def swarm_cluster() -> Iterator[str]:
    """The manager's address, for the block."""
    if shutil.which("dockerd") is None or shutil.which("nsenter") is None:
        missing("dockerd or nsenter is not installed (apt install docker.io util-linux)")
    running = "swarm active" in cluster("status").stdout
    started = cluster("up")
    try:
        if started.returncode != 0:
            missing(f"scripts/swarm-cluster up failed: {started.stderr.strip()[-500:]}")
        yield started.stdout.strip().splitlines()[-1]
    finally:
        if not running:
            cluster("down")


def stop_dockerd(node: int) -> None:
    """SIGTERM to a node's dockerd (it stops its containers, then itself); `restore` starts
    it again."""
    os.kill(int(Path(f"/run/baepo-swarm/node{node}/dockerd.pid").read_text()), signal.SIGTERM)


def restore() -> None:
    """Every node's dockerd answering again, each back in the swarm."""
    again = cluster("up")
    assert again.returncode == 0, again.stderr
