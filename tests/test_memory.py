"""After a burst of allocations in many threads, `memory.trim()` gives the freed pages back:
resident memory falls near where it was, instead of staying at the peak."""

from __future__ import annotations

import subprocess
import sys

from baepo import memory

BURST = """
import gc, sys, threading
from baepo import memory

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) // 1024

memory.limit_arenas()
held = []
def work():
    held.append([bytearray(64 * 1024) for _ in range(500)])  # 32 MB per thread

threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
survivors = [h[::50] for h in held]  # a few blocks stay alive, scattered
held.clear(); gc.collect()
freed = rss()
memory.trim()
print(freed, rss())
"""


def test_trim_gives_a_burst_back() -> None:
    done = subprocess.run(
        [sys.executable, "-c", BURST], capture_output=True, text=True, timeout=120, check=True
    )
    freed, trimmed = (int(v) for v in done.stdout.split())
    assert freed > 200, "the burst did not stay resident: nothing to show"
    assert trimmed < freed / 2, (freed, trimmed)


def test_both_calls_are_safe_to_repeat() -> None:
    assert memory.trim() in (True, False)
    assert memory.limit_arenas() in (True, False)
