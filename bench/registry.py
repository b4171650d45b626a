"""Registry throughput: Baepo vs. CNCF distribution (Debian's docker-registry), same run.

Two workloads, each pushed (OCI layout → registry) and pulled (registry → OCI layout) with
skopeo, several rounds, best round kept:
  big   one image with a single 100 MB layer
  many  one image with 50 layers of 1 MB
Also reports Baepo's idle resident memory (after start-up, and after the workloads).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.clients import OciLayout
from tests.conftest import BaepoProcess, free_port

MB = 1_000_000


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_distribution(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    proc = subprocess.Popen(
        ["docker-registry", "serve", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    host = f"127.0.0.1:{port}"
    for _ in range(200):
        if (
            subprocess.run(["curl", "-sf", f"http://{host}/v2/"], capture_output=True).returncode
            == 0
        ):
            return proc, host
        time.sleep(0.05)
    raise RuntimeError("docker-registry did not start")


def timed(*cmd: str) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def run_round(
    host: str, creds: list[str], layout: Path, tag: str, work: Path, n: int
) -> tuple[float, float]:
    repo = f"docker://{host}/bench/{tag}-{n}:1"
    push = timed(
        "skopeo",
        "copy",
        "--dest-tls-verify=false",
        *[f"--dest-{c}" for c in creds],
        f"oci:{layout}:{tag}",
        repo,
    )
    out = work / f"pull-{tag}-{n}"
    pull = timed(
        "skopeo",
        "copy",
        "--src-tls-verify=false",
        *[f"--src-{c}" for c in creds],
        repo,
        f"oci:{out}:{tag}",
    )
    shutil.rmtree(out)
    return push, pull


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="baepo-bench-") as tmp:
        work = Path(tmp)
        sizes = {"big": 100 * MB, "many": 50 * MB}

        baepo = BaepoProcess(work / "baepo")
        baepo.start()
        assert baepo.process is not None
        time.sleep(1)
        idle_start = rss_mib(baepo.process.pid)
        dist, dist_host = start_distribution(work / "dist")
        targets = {
            "distribution": (dist_host, []),
            "baepo": (baepo.host, [f"creds=admin:{baepo.password}"]),
        }
        results: dict[tuple[str, str, str], float] = {}
        try:
            for n in range(args.rounds):
                # Fresh content every round: skopeo remembers where blobs live and would
                # otherwise mount them instead of uploading.
                layout = OciLayout(work / f"layout-{n}")
                layout.tag(layout.image("amd64", layer_bytes=100 * MB, layers=1), "big")
                layout.tag(layout.image("amd64", layer_bytes=1 * MB, layers=50), "many")
                order = list(targets.items())
                if n % 2:
                    order.reverse()
                for tag in ("big", "many"):
                    for name, (host, creds) in order:
                        push, pull = run_round(host, creds, layout.root, tag, work, n)
                        for kind, secs in (("push", push), ("pull", pull)):
                            key = (name, tag, kind)
                            results[key] = min(results.get(key, float("inf")), secs)
                shutil.rmtree(layout.root)
            time.sleep(2)
            idle_after = rss_mib(baepo.process.pid)
        finally:
            baepo.stop()
            dist.send_signal(signal.SIGTERM)
            dist.wait()

    print(f"{'workload':<10} {'dir':<5} {'distribution':>14} {'baepo':>12} {'ratio':>7}")
    for tag in ("big", "many"):
        for kind in ("push", "pull"):
            d = sizes[tag] / results[("distribution", tag, kind)] / MB
            b = sizes[tag] / results[("baepo", tag, kind)] / MB
            print(f"{tag:<10} {kind:<5} {d:>9.1f} MB/s {b:>7.1f} MB/s {b / d:>6.2f}x")
    print(
        f"baepo idle RSS: {idle_start:.1f} MiB after start, {idle_after:.1f} MiB after the runs"
        f" (cpu count {os.cpu_count()})"
    )


if __name__ == "__main__":
    main()
