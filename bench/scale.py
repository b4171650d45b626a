"""Idle cost at scale: Baepo's CPU and memory with 10, 100 and 300 idle services.

One `baepo up` (quotas raised) runs services of `baepo-test/hello:1` (busybox httpd, one
instance each, the default TCP health check). At each step the bench creates services up to
the step's count through the REST API, waits until every one is RUNNING with no operation in
flight, lets things settle, then reads the CPU time of the `baepo up` process and of its HAProxy
(master and workers, apart) from /proc over a window with no request sent, and their RSS. It
prints each step and the slope per service between the first and the last step: what one more
idle service costs. The goal (issue 9): 100 idle services under 2 % of one core.

Each service has a network of its own, and Docker's address pool decides how many fit:
`scripts/engine`'s engine holds 256, shared with whoever else uses it (so 100 services fit
there, 300 may not). `--own-engine` starts a private dockerd for the run (a new data root,
exec root and socket, a pool of 4,096 /24s, no iptables, a default bridge of its own) and
loads the test image into it; it is stopped and its data root removed at the end. It never
deletes the host's docker0 (see `own_engine` for how Docker would), and checks that.

    PYTHONPATH=src .venv/bin/python bench/scale.py --steps 10,100
    PYTHONPATH=src .venv/bin/python bench/scale.py --own-engine --steps 10,100,300
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.clients import Docker
from tests.conftest import BaepoProcess

from baepo.config import Config

IMAGE = "baepo-test/hello:1"
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Sample:
    services: int
    baepo_cpu: float  # % of one core
    baepo_rss_mib: float
    haproxy_cpu: float
    haproxy_rss_mib: float


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime, every thread


def rss_mib(pid: int) -> float:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE / 2**20


def haproxy_pids(master: int) -> list[int]:
    """The master and its children (the worker, and old workers still finishing)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == master:
                children.append(int(stat.parent.name))
    return [master, *children]


def measure(baepo: int, haproxy: list[int], window: float) -> tuple[float, float]:
    """(baepo, haproxy) CPU over `window` seconds, in % of one core."""

    def total(pids: list[int]) -> float:
        seconds = 0.0
        for pid in pids:
            with contextlib.suppress(OSError):
                seconds += cpu_seconds(pid)
        return seconds

    b0, h0, t0 = cpu_seconds(baepo), total(haproxy), time.monotonic()
    time.sleep(window)
    b1, h1, t1 = cpu_seconds(baepo), total(haproxy), time.monotonic()
    return 100 * (b1 - b0) / (t1 - t0), 100 * (h1 - h0) / (t1 - t0)


BRIDGE = "baepo-bench0"
BRIDGE_ADDRESS = "10.223.255.1/24"


def has_docker0() -> bool:
    """Whether the host's `docker0` exists (`ip link show docker0`)."""
    shown = subprocess.run(["ip", "link", "show", "docker0"], capture_output=True, check=False)
    return shown.returncode == 0


@contextlib.contextmanager
def own_engine(root: Path) -> Iterator[str]:
    """A private dockerd for the run, with room for thousands of networks.

    It must never touch the host's `docker0`, the shared engine's default bridge. Docker 20.10
    deletes the link named `docker0`, whatever its own `--bridge` says, in two cases
    (`configureNetworking` in moby's daemon_unix.go): at every start with `--bridge=none`, and
    at a start that finds a "bridge" network left in its data root while
    `--default-address-pool` is set (its "stale bridge network" cleanup). Each run of this bench
    used to start on the same data root, so every run after the first deleted it. So: a data
    root of its own for each run (nothing left in it), removed after; a default bridge of its
    own (`--bridge`, made here); and `docker0` checked before and after the start and at the
    end, the run stopped at once if it went away."""
    base = Path("/var/lib/baepo-bench-engine")
    base.mkdir(parents=True, exist_ok=True)
    data = Path(tempfile.mkdtemp(prefix="data-", dir=base))
    run = Path(tempfile.mkdtemp(prefix="baepo-bench-engine-", dir="/run"))
    host = f"unix://{run}/docker.sock"
    had_docker0 = has_docker0()

    def check_docker0(when: str) -> None:
        if had_docker0 and not has_docker0():
            raise RuntimeError(
                f"the host's docker0 is gone {when} the private dockerd: restart the engine that "
                "owns it (for scripts/engine: stop its dockerd, run scripts/engine)"
            )

    subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True, check=False)  # a leftover
    subprocess.run(["ip", "link", "add", "name", BRIDGE, "type", "bridge"], check=True)
    subprocess.run(["ip", "addr", "add", BRIDGE_ADDRESS, "dev", BRIDGE], check=True)
    subprocess.run(["ip", "link", "set", BRIDGE, "up"], check=True)
    log = (root / "dockerd.log").open("wb")
    dockerd = subprocess.Popen(
        [
            "dockerd", "--data-root", str(data), "--exec-root", str(run / "exec"),
            "--pidfile", str(run / "dockerd.pid"), "-H", host,
            "--default-address-pool", "base=10.224.0.0/12,size=24",
            "--iptables=false", "--ip-masq=false", "--bridge", BRIDGE,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(
            ["docker", "-H", host, "version"], capture_output=True, check=False
        ).returncode:
            if dockerd.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the bench's dockerd did not start; see {root}/dockerd.log")
            time.sleep(0.5)
        check_docker0("since the start of")
        shared = os.environ["DOCKER_HOST"]
        save = subprocess.Popen(["docker", "-H", shared, "save", IMAGE], stdout=subprocess.PIPE)
        subprocess.run(["docker", "-H", host, "load"], stdin=save.stdout, check=True)
        save.wait()
        yield host
    finally:
        dockerd.send_signal(signal.SIGTERM)
        try:
            dockerd.wait(timeout=120)
        except subprocess.TimeoutExpired:
            dockerd.kill()
            dockerd.wait()
        subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True, check=False)
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(run, ignore_errors=True)
        check_docker0("after")


def create(api: httpx.Client, image: str, names: list[str]) -> None:
    def one(name: str) -> None:
        for attempt in range(5):
            r = api.post("/api/v1/services", json={"name": name, "image": image, "port": 8080})
            if r.status_code == 202:
                return
            if attempt == 4:
                raise RuntimeError(f"creating {name}: {r.status_code} {r.text}")
            time.sleep(1)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(one, names))


def wait_running(api: httpx.Client, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    summary = ""
    while time.monotonic() < deadline:
        try:
            answer = api.get("/api/v1/services")
        except httpx.HTTPError as exc:
            summary = f"listing failed: {exc!r}"
            time.sleep(2)
            continue
        services = answer.json()
        if answer.status_code != 200 or not isinstance(services, list):
            summary = f"listing answered {answer.status_code}: {answer.text[:200]}"
            time.sleep(2)
            continue
        settled = [s for s in services if s["status"] == "RUNNING" and s["operation"] is None]
        summary = f"{len(settled)} of {len(services)} running (want {count})"
        if len(services) >= count and len(settled) == len(services):
            return
        time.sleep(2)
    raise RuntimeError(f"services did not settle in {timeout:.0f} s: {summary}")


def run(args: argparse.Namespace, root: Path, engine: str) -> list[Sample]:
    os.environ["DOCKER_HOST"] = engine
    docker = Docker(engine, root / "docker")
    flags = ("--max-services-per-user", "10000", "--max-instances-per-user", "10000")
    baepo = BaepoProcess(root / "data", extra_args=flags)
    baepo.start(timeout=60)
    samples = []
    try:
        docker("login", baepo.host, "-u", "admin", "--password-stdin", input=baepo.password)
        image = f"{baepo.host}/bench/hello:1"
        docker("tag", IMAGE, image)
        docker("push", image)
        token = httpx.post(
            f"{baepo.url}/api/v1/login", json={"username": "admin", "password": baepo.password}
        ).json()["token"]
        api = httpx.Client(
            base_url=baepo.url, headers={"Authorization": f"Bearer {token}"}, timeout=120
        )
        assert baepo.process is not None
        pidfile = Config(data_dir=baepo.data_dir).router_run_dir / "haproxy.pid"
        made = 0
        for step in args.steps:
            started = time.monotonic()
            create(api, image, [f"s{i:04d}" for i in range(made, step)])
            made = step
            wait_running(api, step, args.settle_timeout)
            print(f"{step} services running after {time.monotonic() - started:.0f} s", flush=True)
            time.sleep(args.settle)
            master = int(pidfile.read_text().split()[0])
            haproxy = haproxy_pids(master)
            baepo_cpu, haproxy_cpu = measure(baepo.process.pid, haproxy, args.window)
            sample = Sample(
                step,
                baepo_cpu,
                rss_mib(baepo.process.pid),
                haproxy_cpu,
                sum(rss_mib(p) for p in haproxy if Path(f"/proc/{p}").exists()),
            )
            print(format_sample(sample), flush=True)
            samples.append(sample)
    finally:
        baepo.stop()
        baepo.stop_data_plane()
    return samples


def format_sample(s: Sample) -> str:
    return (
        f"{s.services:5d} services   baepo {s.baepo_cpu:6.2f} % CPU {s.baepo_rss_mib:7.1f} MiB"
        f"   haproxy {s.haproxy_cpu:6.2f} % CPU {s.haproxy_rss_mib:7.1f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", default="10,100,300", help="service counts, ascending")
    parser.add_argument("--window", type=float, default=60, help="seconds measured per step")
    parser.add_argument("--settle", type=float, default=20, help="seconds idle before it")
    parser.add_argument("--settle-timeout", type=float, default=1800)
    parser.add_argument("--own-engine", action="store_true", help="a private dockerd")
    args = parser.parse_args()
    # Cleanup (Baepo, its HAProxy and containers, the private engine) runs on SIGTERM too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args.steps = sorted(int(s) for s in args.steps.split(","))
    if args.own_engine and shutil.which("dockerd") is None:
        parser.error("--own-engine needs dockerd")
    with tempfile.TemporaryDirectory(prefix="baepo-scale-") as tmp:
        root = Path(tmp)
        with contextlib.ExitStack() as stack:
            engine = os.environ.get("DOCKER_HOST", "unix:///run/baepo-engine/docker.sock")
            os.environ["DOCKER_HOST"] = engine
            if args.own_engine:
                engine = stack.enter_context(own_engine(root))
            samples = run(args, root, engine)
    print("\nidle cost (CPU in % of one core, over", f"{args.window:.0f} s per step)")
    for sample in samples:
        print(format_sample(sample))
    first, last = samples[0], samples[-1]
    if last.services > first.services:
        n = last.services - first.services
        print(
            f"per service: baepo {(last.baepo_cpu - first.baepo_cpu) / n:.4f} % CPU, "
            f"{(last.baepo_rss_mib - first.baepo_rss_mib) / n * 1024:.0f} KiB; "
            f"haproxy {(last.haproxy_cpu - first.haproxy_cpu) / n:.4f} % CPU, "
            f"{(last.haproxy_rss_mib - first.haproxy_rss_mib) / n * 1024:.0f} KiB"
        )


if __name__ == "__main__":
    main()
