"""Push to live: `git push baepo main` of a small Python app (tests, build, push, deploy) until
its URL answers the new version, cold (nothing of the app in the engine's layer cache) and
warm (one source file changed: the layers before its COPY come from the cache).

The reference, measured in the same run: the app's own start, i.e. the image the pipeline
built started by the engine client Baepo uses, on an engine network, until the first HTTP 200
from the container. Goal (issue 10): warm push-to-live ≤ 5 s plus the app's own start.

    DOCKER_HOST=unix:///run/baepo-engine/docker.sock python bench/pipeline.py --rounds 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autoscale import REFERENCE_NETWORK, container_start
from tests.e2e.conftest import Stack, open_stack

from baepo.runtime import DockerEngine

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "pipeline-python"
LIVE_LIMIT_S = 300


def git(work: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=work, env=env, capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout + done.stderr


def push_to_live(stack: Stack, work: Path, env: dict[str, str], host: str, answer: str) -> float:
    """Seconds from `git push` until the URL answers `answer`."""
    start = time.perf_counter()
    git(work, env, "push", "-q", "baepo", "main")
    with stack.client(host, 5) as client:
        while time.perf_counter() - start < LIVE_LIMIT_S:
            try:
                if answer in client.get("/").text:
                    return time.perf_counter() - start
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
    raise SystemExit(f"{host} never answered {answer!r}")


def measure(engine: DockerEngine, rounds: int) -> tuple[list[float], list[float], list[float]]:
    """(cold, warm, the app's own start) of each round, in seconds."""
    cold: list[float] = []
    warm: list[float] = []
    starts: list[float] = []
    with tempfile.TemporaryDirectory(prefix="baepo-bench-") as tmp:
        root = Path(tmp)
        with open_stack(root, "--deploy-timeout", "60") as stack:
            home = root / "home"
            home.mkdir()
            env = {
                **os.environ,
                "HOME": str(home),
                "GIT_CONFIG_GLOBAL": str(home / "gitconfig"),
                "GIT_CONFIG_NOSYSTEM": "1",
                "GIT_TERMINAL_PROMPT": "0",
                "GIT_AUTHOR_NAME": "bench",
                "GIT_AUTHOR_EMAIL": "bench@localhost",
                "GIT_COMMITTER_NAME": "bench",
                "GIT_COMMITTER_EMAIL": "bench@localhost",
            }
            for round_ in range(rounds):
                name = f"bench{round_}"
                seed = stack.push("baepo-test/hello:1", f"admin/{name}:seed")
                stack.cli("services", "create", name, "--image", seed, "--port", "8080")
                stack.wait_idle(name)
                token = stack.cli("tokens", "create", f"git-{name}", "--service", name)
                work = root / name
                shutil.copytree(EXAMPLE, work)
                # A layer no earlier build made: this round's first push starts cold.
                dockerfile = work / "Dockerfile"
                dockerfile.write_text(
                    dockerfile.read_text().replace("cached between pushes", f"round {tmp} {round_}")
                )
                git(work, env, "init", "-q", "-b", "main")
                git(work, env, "add", "-A")
                git(work, env, "commit", "-q", "-m", "v1")
                url = f"http://admin:{token.stdout.strip()}@{stack.baepo.host}/git/{name}.git"
                git(work, env, "remote", "add", "baepo", url)
                host = f"{name}.localhost"
                cold.append(push_to_live(stack, work, env, host, "pipeline app v1"))
                app = work / "app.py"
                app.write_text(app.read_text().replace('VERSION = "1"', 'VERSION = "2"'))
                git(work, env, "commit", "-q", "-am", "v2")
                warm.append(push_to_live(stack, work, env, host, "pipeline app v2"))
                image = str(stack.describe(name)["config"]["image"])  # type: ignore[index]
                starts.append(container_start(engine, image))
                print(
                    f"round {round_ + 1}: cold {cold[-1]:.2f} s, warm {warm[-1]:.2f} s, "
                    f"app's own start {starts[-1]:.2f} s",
                    flush=True,
                )
    return cold, warm, starts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    engine = DockerEngine(os.environ.get("DOCKER_HOST", "unix:///run/baepo-engine/docker.sock"))
    engine.ensure_network(REFERENCE_NETWORK, {"baepo.bench": "pipeline"})
    try:
        cold, warm, starts = measure(engine, args.rounds)
    finally:
        engine.remove_network(REFERENCE_NETWORK)
    start = statistics.median(starts)
    print(f"cold push-to-live:  median {statistics.median(cold):.2f} s ({_list(cold)})")
    print(f"warm push-to-live:  median {statistics.median(warm):.2f} s ({_list(warm)})")
    print(f"app's own start:    median {start:.2f} s ({_list(starts)})")
    median_warm = statistics.median(warm)
    print(f"warm minus the app's start: {median_warm - start:.2f} s (goal: at most 5 s)")
    print(f"ratio warm / app's start: {median_warm / start:.1f}")


def _list(values: list[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    main()
