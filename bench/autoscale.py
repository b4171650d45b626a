"""Cold start at zero: a request to a service scaled to zero → its answer, minus the container's
own start measured in the same run.

A service with `--min-instances 0` (the hello image, the default TCP health check a user gets)
idles until it runs no container (the idle period, 30 s). Then one request goes through the
router: the activator holds it, Baepo starts an instance, probes it, routes it, and the request
is answered. The reference, each round too: the same image started by the same engine client
Baepo uses (`DockerEngine.run`, on an engine network like Baepo's), from the call until the
first HTTP 200 of a direct connection to the container. Goal: cold start - container start
≤ 300 ms. A warm request through the router is timed too, for scale.

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
from tests.e2e.conftest import https_client

from baepo.runtime import ContainerSpec, DockerEngine

IMAGE = "baepo-test/hello:1"
IDLE_LIMIT_S = 180
REFERENCE_NETWORK = "baepo-bench-reference"


def container_start(engine: DockerEngine) -> float:
    """Engine start of the image → first 200 from the container itself (seconds)."""
    spec = ContainerSpec(
        image=IMAGE,
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    engine = DockerEngine(os.environ["DOCKER_HOST"])
    engine.ensure_network(REFERENCE_NETWORK, {"baepo.bench": "autoscale"})
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


if __name__ == "__main__":
    main()
