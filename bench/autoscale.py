"""Cold start at zero: a request to a service scaled to zero → its answer, minus the container's
own start measured in the same run; and a load step: 5 → 300 clients → the first new instance
serving.

A service with `--min-instances 0` (the hello image, the default TCP health check a user gets)
idles until it runs no container (the idle period, 30 s). Then one request goes through the
router: the activator holds it, Baepo starts an instance, probes it, routes it, and the request
is answered. The reference, each round too: the same image started by the same engine client
Baepo uses (`DockerEngine.run`, on an engine network like Baepo's), from the call until the
first HTTP 200 of a direct connection to the container. Goal: cold start - container start
≤ 300 ms. A warm request through the router is timed too, for scale.

The load step (issue 9's check): a service with max concurrency 50 (min 1, max 4) under 5 wrk
clients; then 295 more. HAProxy's stats are read every 50 ms until a second server has taken a
request: the time from the step to then is what a user waits for the first new instance,
against the goal of 6 s; the container's own start (above) is printed beside it. wrk's errors
and non-2xx answers over the whole step are printed too (goal: 0).

    DOCKER_HOST=unix:///run/baepo-engine/docker.sock python bench/autoscale.py --rounds 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.clients import Docker
from tests.conftest import BaepoProcess
from tests.e2e.conftest import https_client, parse_wrk

from baepo.config import Config
from baepo.router.runtime import RuntimeSocket, WorkerAPI
from baepo.runtime import ContainerSpec, DockerEngine

IMAGE = "baepo-test/hello:1"
IDLE_LIMIT_S = 180
REFERENCE_NETWORK = "baepo-bench-reference"


def container_start(engine: DockerEngine, image: str = IMAGE) -> float:
    """Engine start of the image → first 200 from the container itself (seconds), on
    REFERENCE_NETWORK (which the caller makes)."""
    spec = ContainerSpec(
        image=image,
        name=f"baepo-bench-{os.getpid()}",
        port=8080,
        env={"PORT": "8080"},
        cpu=1.0,
        memory_mb=2048,
        network=REFERENCE_NETWORK,
    )
    start = time.perf_counter()
    instance = engine.run(spec)
    try:
        assert instance.address, instance
        with httpx.Client(timeout=1) as client:
            while True:
                try:
                    if client.get(f"http://{instance.address}/").status_code == 200:
                        return time.perf_counter() - start
                except httpx.HTTPError:
                    pass
                time.sleep(0.002)
    finally:
        engine.stop(instance.id, 1)
        engine.remove(instance.id)


def containers(docker: Docker, service: str) -> list[str]:
    listed = docker("ps", "-a", "-q", "--filter", f"label=baepo.service={service}").stdout
    return listed.split()


def wait_for_zero(docker: Docker, service: str) -> None:
    deadline = time.monotonic() + IDLE_LIMIT_S
    while containers(docker, service):
        if time.monotonic() > deadline:
            raise SystemExit(f"{service} did not scale to zero within {IDLE_LIMIT_S} s")
        time.sleep(0.5)


def timed_get(client: httpx.Client) -> float:
    start = time.perf_counter()
    response = client.get("/")
    elapsed = time.perf_counter() - start
    if response.status_code != 200 or "hello" not in response.text:
        raise SystemExit(f"the service answered {response.status_code}: {response.text[:200]}")
    return elapsed


def wrk(port: int, host: str, clients: int, seconds: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            "wrk", "-t1", f"-c{clients}", f"-d{seconds}s", "--timeout", "10s",
            "-H", f"Host: {host}", f"https://127.0.0.1:{port}/",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def load_step(baepo: BaepoProcess, service: str) -> float:
    """5 clients, then 300: seconds from the step until a second server took a request (wrk's
    summaries are printed)."""
    stats = WorkerAPI(
        RuntimeSocket(Config(data_dir=baepo.data_dir).router_run_dir / "haproxy.sock")
    )
    host = f"{service}.localhost"
    calm = wrk(baepo.https_port, host, 5, 60)
    busy: subprocess.Popen[str] | None = None
    try:
        time.sleep(5)  # the calm load, observed for a few seconds (bounded by wrk's -d)
        step = time.perf_counter()
        busy = wrk(baepo.https_port, host, 295, 30)
        deadline = step + 60
        while time.perf_counter() < deadline:
            servers = [r for r in stats.stats(f"svc_{service}") if r.get("type") == "2"]
            if sum(1 for r in servers if int(r.get("stot") or 0) > 0) >= 2:
                return time.perf_counter() - step
            time.sleep(0.05)
        return float("inf")
    finally:
        outputs = []
        for load in (calm, busy):
            if load is not None:
                load.send_signal(2)
                outputs.append(load.communicate(timeout=60)[0])
        summary = [parse_wrk(o) for o in outputs]
        print(
            "load step wrk (requests, socket errors, non-2xx): "
            + ", ".join(str(s) for s in summary),
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=2, help="load steps (0: none)")
    args = parser.parse_args()
    engine = DockerEngine(os.environ["DOCKER_HOST"])
    engine.ensure_network(REFERENCE_NETWORK, {"baepo.bench": "autoscale"})
    steps: list[float] = []
    with tempfile.TemporaryDirectory(prefix="baepo-bench-") as tmp:
        root = Path(tmp)
        docker = Docker(os.environ["DOCKER_HOST"], root / "docker")
        baepo = BaepoProcess(root / "data")
        baepo.start()
        try:
            docker("login", baepo.host, "-u", "admin", "--password-stdin", input=baepo.password)
            ref = f"{baepo.host}/team/cold:1"
            docker("tag", IMAGE, ref)
            docker("push", ref)
            env = {**os.environ, "BAEPO_URL": baepo.url, "BAEPO_CONFIG": str(root / "cli.json")}
            cli = [sys.executable, "-m", "baepo"]

            def baepo_cli(*words: str, stdin: str | None = None) -> None:
                subprocess.run(
                    [*cli, *words], env=env, input=stdin, check=True, text=True,
                    capture_output=True,
                )  # fmt: skip

            baepo_cli("login", "--password-stdin", stdin=baepo.password)
            baepo_cli("ca", "--out", str(root / "ca.pem"))
            baepo_cli(
                "services", "create", "cold", "--image", ref, "--min-instances", "0", "--wait"
            )
            cold, reference, warm = [], [], []
            for n in range(args.rounds):
                wait_for_zero(docker, "cold")
                with https_client(root / "ca.pem", baepo.https_port, "cold.localhost", 70) as c:
                    cold.append(timed_get(c))
                    warm.append(min(timed_get(c) for _ in range(20)))
                reference.append(container_start(engine))
                print(
                    f"round {n + 1}: cold start {cold[-1] * 1000:.0f} ms, container start "
                    f"{reference[-1] * 1000:.0f} ms, overhead "
                    f"{(cold[-1] - reference[-1]) * 1000:.0f} ms",
                    flush=True,
                )
            for n in range(args.steps):
                # A new service each time: one that just shrank back still remembers the last
                # step in its stable window.
                step_service = f"step{n + 1}"
                baepo_cli(
                    "services", "create", step_service, "--image", ref, "--max-concurrency",
                    "50", "--max-instances", "4", "--wait",
                )  # fmt: skip
                waited = load_step(baepo, step_service)
                steps.append(waited)
                print(f"step {n + 1}: first new instance serving {waited:.2f} s after the step")
                baepo_cli("services", "rm", step_service, "--wait")
        finally:
            baepo.stop()
            baepo.stop_data_plane()
            engine.remove_network(REFERENCE_NETWORK)
    overhead = [c - r for c, r in zip(cold, reference, strict=True)]
    print(f"cold start at zero (median of {len(cold)}): {statistics.median(cold) * 1000:.0f} ms")
    print(f"container's own start (median):  {statistics.median(reference) * 1000:.0f} ms")
    print(
        f"overhead (cold - container, median): {statistics.median(overhead) * 1000:.0f} ms "
        f"(max {max(overhead) * 1000:.0f} ms; goal ≤ 300 ms)"
    )
    print(f"warm request through the router (best): {min(warm) * 1000:.1f} ms")
    if steps:
        print(
            f"load step 5 → 300 clients → first new instance serving (median of {len(steps)}): "
            f"{statistics.median(steps):.2f} s (goal ≤ 6 s; the container's own start is "
            f"{statistics.median(reference):.2f} s of it)"
        )


if __name__ == "__main__":
    main()
