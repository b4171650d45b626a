"""`baepo services logs` against a real Baepo, engine and router: a crashed instance's last
lines are readable after the reconciler replaced it, `-f` follows a running one, a chatty app
does not grow the kept log past its bound, and Baepo's own log has no line per poll."""

from __future__ import annotations

import json
import os
import queue
import secrets
import shlex
import stat
import subprocess
import sys
import threading
import time

import pytest

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.integration

# Serves like the hello image (httpd on 8080) and says things; `touch /tmp/crash` (docker
# exec) makes it write its last words and exit 3.
CRASHING = r"""
echo "starting up"
echo "warning: cheese supply low" >&2
httpd -f -p 8080 -h /www &
while [ ! -e /tmp/crash ]; do sleep 0.1; done
echo "fatal: out of cheese"
exit 3
"""
TICKING = r"""
httpd -f -p 8080 -h /www &
i=0
while true; do i=$((i+1)); echo "tick $i"; sleep 0.3; done
"""
CHATTY = r"""
i=0
while [ $i -lt 25000 ]; do i=$((i+1)); echo "chatter $i: all work and no play"; done
echo "chatter done"
httpd -f -p 8080 -h /www &
while [ ! -e /tmp/crash ]; do sleep 0.1; done
exit 1
"""


def create(stack: Stack, script: str) -> str:
    name = f"logs-{secrets.token_hex(3)}"
    image = stack.push("baepo-test/hello:1", f"team/{name}:1")
    stack.cli(
        "services", "create", name, "--image", image,
        "--command", f"sh -c {shlex.quote(script)}", "--wait",
    )  # fmt: skip
    return name


def containers(stack: Stack, name: str, *flags: str) -> list[str]:
    listed = stack.docker(
        "ps", *flags, "--no-trunc", "--filter", f"label=baepo.service={name}", "--format",
        "{{.ID}} {{.Label \"baepo.instance\"}}",
    )  # fmt: skip
    return sorted(listed.stdout.split("\n")[:-1])


def crash_and_wait_replaced(stack: Stack, name: str, timeout: float = 60) -> str:
    """Make the running instance crash; once the reconciler removed its container and runs a
    new one, the crashed instance's id."""
    [running] = containers(stack, name)
    container, instance = running.split()
    stack.docker("exec", container, "touch", "/tmp/crash")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        everything = containers(stack, name, "-a")  # exited ones too
        if not any(c.startswith(container) for c in everything) and containers(stack, name):
            return instance
        time.sleep(0.2)
    raise AssertionError(f"{instance} not replaced in {timeout}s: {containers(stack, name, '-a')}")


def entries(stack: Stack, name: str, *args: str) -> list[dict[str, object]]:
    out = stack.cli("services", "logs", name, "--json", *args).stdout
    return [json.loads(line) for line in out.splitlines()]


def test_a_crashed_instances_last_lines_are_read_after_it_is_gone(stack: Stack) -> None:
    name = create(stack, CRASHING)
    crashed = crash_and_wait_replaced(stack, name)

    shown = stack.cli("services", "logs", name).stdout
    mine = [line.rsplit("  ", 1)[1] for line in shown.splitlines() if f"  {crashed}" in line]
    # stdout and stderr are stamped as the engine reads them, each on its own: two lines
    # written one after the other on both may come in either order.
    assert sorted(mine[:2]) == ["starting up", "warning: cheese supply low"], shown
    assert mine[2:] == ["fatal: out of cheese"], shown
    assert f"{crashed} !  warning: cheese supply low" in shown  # stderr is marked
    lines = entries(stack, name, "--instance", crashed)
    assert sorted((e["stream"], e["text"], e["revision"]) for e in lines) == [
        ("stderr", "warning: cheese supply low", 1),
        ("stdout", "fatal: out of cheese", 1),
        ("stdout", "starting up", 1),
    ]
    # The replacement's own first line is there too, after the crash, from the engine.
    everything = entries(stack, name)
    assert [e["text"] for e in everything].count("starting up") == 2
    assert [e["at"] for e in everything] == sorted(str(e["at"]) for e in everything)
    assert entries(stack, name, "--revision", "2") == []
    assert entries(stack, name, "--since", "1s", "--instance", crashed) == []

    events = stack.cli("services", "logs", name, "--events").stdout
    assert f"instance {crashed} (revision 1) exited with code 3; replacing it" in events
    assert "CREATE_SERVICE requested" in events
    stack.cli("services", "rm", name, "--wait")


def test_follow_prints_a_running_instances_new_lines(stack: Stack) -> None:
    name = create(stack, TICKING)
    follow = subprocess.Popen(
        [sys.executable, "-m", "baepo", "services", "logs", name, "-f", "--lines", "2"],
        env={**os.environ, **stack.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    printed: queue.Queue[str] = queue.Queue()
    assert follow.stdout is not None
    stdout = follow.stdout

    def read() -> None:
        for line in stdout:
            printed.put(line)

    threading.Thread(target=read, daemon=True).start()
    ticks: list[int] = []
    try:
        deadline = time.monotonic() + 30  # bounded: a few seconds of ticks are enough
        while len(ticks) < 8 and time.monotonic() < deadline:
            try:
                line = printed.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            text = line.rstrip("\n").rsplit("  ", 1)[-1]
            if text.startswith("tick "):
                ticks.append(int(text.removeprefix("tick ")))
    finally:
        follow.terminate()
        _, errors = follow.communicate(timeout=20)
    assert len(ticks) >= 8, (ticks, errors)
    assert ticks == sorted(ticks) and len(set(ticks)) == len(ticks)  # in order, none twice
    assert ticks[-1] - ticks[0] == len(ticks) - 1  # none missed
    stack.cli("services", "rm", name, "--wait")


def test_a_chatty_app_does_not_grow_the_kept_log_past_its_bound(stack: Stack) -> None:
    name = create(stack, CHATTY)
    crashed = crash_and_wait_replaced(stack, name)

    kept = stack.baepo.data_dir / "logs" / name
    segments = sorted(kept.iterdir())
    on_disk = [raw for s in segments for raw in s.read_bytes().splitlines()]
    assert 7_500 <= len(on_disk) <= 10_000
    assert sum(s.stat().st_size for s in segments) <= 10 * 1024 * 1024
    assert {stat.S_IMODE(s.stat().st_mode) for s in segments} == {0o600}
    assert stat.S_IMODE((stack.baepo.data_dir / "logs").stat().st_mode) == 0o700
    last = entries(stack, name, "--instance", crashed, "--lines", "3")
    assert [e["text"] for e in last] == [
        "chatter 24999: all work and no play",
        "chatter 25000: all work and no play",
        "chatter done",
    ]

    stack.cli("services", "rm", name, "--wait")
    deadline = time.monotonic() + 30  # the reconciler's sweep deletes a gone service's logs
    while kept.exists():
        assert time.monotonic() < deadline, f"{kept} still there"
        time.sleep(0.5)


def test_baepos_own_log_has_no_line_per_probe_or_poll(stack: Stack) -> None:
    name = create(stack, TICKING)
    before = len(stack.baepo.log())
    for _ in range(10):
        stack.describe(name)  # a status poll each
    time.sleep(6)  # past a health check interval: at least one probe of the instance
    lines = stack.baepo.log()[before:].splitlines()
    assert not [line for line in lines if "GET /api/v1" in line], lines
    assert len(lines) < 3, lines
    stack.cli("services", "rm", name, "--wait")
