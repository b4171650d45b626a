"""Auto-deploy latency: end of `docker push` → the new revision serves all traffic.

A service tracks `team/app:live` in Baepo's registry (auto-deploy on). Each round pushes
the other of two images to that tag with the docker CLI, then polls the service's URL
through the router until 20 requests in a row answer with the new version. The reference
measured in the same run is the app's own start time: `docker run` of the same image until
its first 200 on /healthz. Goal: deploy ≤ app start + 2 s.
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
from tests.conftest import BaepoProcess, free_port
from tests.e2e.conftest import https_client


def app_start_time(docker: Docker) -> float:
    port = free_port()
    start = time.perf_counter()
    cid = docker(
        "run", "-d", "--rm", "-p", f"127.0.0.1:{port}:8080", "baepo-test/hello:1"
    ).stdout.strip()
    try:
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    return time.perf_counter() - start
            except httpx.HTTPError:
                pass
            time.sleep(0.005)
    finally:
        docker("rm", "-f", cid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="baepo-bench-") as tmp:
        root = Path(tmp)
        docker = Docker(os.environ["DOCKER_HOST"], root / "docker")
        baepo = BaepoProcess(root / "data")
        baepo.start()
        try:
            docker("login", baepo.host, "-u", "admin", "--password-stdin", input=baepo.password)
            ref = f"{baepo.host}/team/app:live"
            docker("tag", "baepo-test/hello:1", ref)
            docker("push", ref)
            env = {**os.environ, "BAEPO_URL": baepo.url, "BAEPO_CONFIG": str(root / "cli.json")}
            baepo_cli = [sys.executable, "-m", "baepo"]
            subprocess.run(
                [*baepo_cli, "login", "--password-stdin"],
                env=env,
                check=True,
                input=baepo.password,
                text=True,
                capture_output=True,
            )
            subprocess.run(
                [
                    *baepo_cli,
                    "services",
                    "create",
                    "app",
                    "--image",
                    ref,
                    "--health-check-path",
                    "/healthz",
                    "--auto-deploy",
                    "--wait",
                ],
                env=env,
                check=True,
                capture_output=True,
            )
            ca = root / "ca.pem"
            subprocess.run(
                [*baepo_cli, "ca", "--out", str(ca)], env=env, check=True, capture_output=True
            )
            starts = [app_start_time(docker) for _ in range(args.rounds)]
            deploys = []
            with https_client(ca, baepo.https_port, "app.localhost", timeout=5) as client:
                for n in range(args.rounds):
                    version = 2 if n % 2 == 0 else 1
                    docker("tag", f"baepo-test/hello:{version}", ref)
                    docker("push", ref)
                    pushed = time.perf_counter()
                    streak = 0
                    while streak < 20:
                        text = client.get("/").text
                        streak = streak + 1 if f"hello v{version}" in text else 0
                        if time.perf_counter() - pushed > 60:
                            raise SystemExit(f"round {n}: v{version} never served all traffic")
                    deploys.append(time.perf_counter() - pushed)
                    # let the old instance finish draining before the next round
                    subprocess.run(
                        [*baepo_cli, "services", "describe", "app"], env=env, capture_output=True
                    )
                    time.sleep(1)
        finally:
            baepo.stop()
            baepo.stop_data_plane()
    app = statistics.median(starts)
    deploy = statistics.median(deploys)
    print(f"app start (docker run → first 200), median of {len(starts)}: {app:6.3f} s")
    print(
        f"push → new revision serves all traffic, median of {len(deploys)}: {deploy:6.3f} s"
        f"  (min {min(deploys):.3f}, max {max(deploys):.3f})"
    )
    print(f"overhead beyond the app's start: {deploy - app:6.3f} s  (goal ≤ 2 s)")


if __name__ == "__main__":
    main()
