"""A router's watchdog, when several Baepo processes share the routes (`router/shared.py`).

Each process's HAProxy outlives it on purpose: a restarted Baepo adopts it, and requests never
stop. Behind a load balancer, though, a HAProxy whose Baepo is gone for good would go on
serving the routes it last had, and they go stale once the new leader deploys (the old
instances stopped, the new ones unknown to it). The watchdog, a small process Baepo starts next
to its HAProxy, asks Baepo's health endpoint every second. When Baepo has not answered for
`--grace` seconds, and other routers were alive when it last looked (the `--peers` file Baepo
keeps: "1" or "0"), it soft-stops the HAProxy: no new connections (the balancer sends them to
the other routers), the requests under way finished, kept-alive connections closed after their
current answer. A Baepo started again within the grace adopts the HAProxy as before; one started
later runs a new one. With no other router, the HAProxy is never stopped: a late restart still
finds it serving.

The standard library only (`python -I watchdog.py …`): it stays small beside the HAProxy. It
ends once it has stopped the HAProxy, or when neither the HAProxy nor Baepo runs.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

CHECK_S = 1.0


def master(pidfile: Path) -> int | None:
    """The HAProxy master's pid, if the pidfile names a running haproxy."""
    try:
        pid = int(pidfile.read_text().split()[0])
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return None
    return pid if b"haproxy" in command.split(b"\0")[0] else None


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=CHECK_S) as answer:
            return bool(answer.status == 200)
    except (OSError, urllib.error.URLError, ValueError):
        return False


def others_alive(peers: Path) -> bool:
    try:
        return peers.read_text().strip() == "1"
    except OSError:
        return False


def watch(health: str, pidfile: Path, peers: Path, grace_s: float) -> str:
    """Until the HAProxy is stopped or there is nothing left to watch; what ended it."""
    answered = time.monotonic()
    while True:
        pid = master(pidfile)
        if answers(health):
            answered = time.monotonic()
        elif pid is None:
            return "neither Baepo nor its HAProxy runs"
        elif time.monotonic() - answered >= grace_s and others_alive(peers):
            os.kill(pid, signal.SIGUSR1)
            return f"Baepo gone for {grace_s:.0f} s, other routers serve: soft-stopped {pid}"
        time.sleep(CHECK_S)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--health", required=True, help="Baepo's health URL")
    parser.add_argument("--pidfile", required=True, type=Path, help="HAProxy's pidfile")
    parser.add_argument("--peers", required=True, type=Path, help="'1' if others route")
    parser.add_argument("--grace", type=float, default=6.0, help="seconds without Baepo")
    args = parser.parse_args(argv)
    print(f"watchdog: {watch(args.health, args.pidfile, args.peers, args.grace)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
