"""kill -9 at random points, many times: of Baepo in the middle of pushes, deploys and
deletes, and of its HAProxy. Afterwards every pushed image is complete or absent, every
service converges to the revision Baepo last accepted for it, and nothing is left behind: no
orphan container, no route of a deleted service, no upload file.

Seeded (`BAEPO_KILL_SEED`), `BAEPO_KILL_TRIALS` trials (20 by default, for CI's time); the
seed and each trial's plan are printed, so a failure can be replayed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from baepo.config import Config
from baepo.runtime import DockerEngine
from tests.backends import BACKENDS
from tests.conftest import BaepoProcess
from tests.e2e.conftest import Stack, open_stack

pytestmark = pytest.mark.integration

TRIALS = int(os.environ.get("BAEPO_KILL_TRIALS", "20"))  # 50 or more for a longer search
SEED = int(os.environ.get("BAEPO_KILL_SEED", "20261202"))
SERVICES = ("kl-a", "kl-b")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of its own: upload sessions expire after 3 s, so none may be left over."""
    root = tmp_path_factory.mktemp("kill-loop")
    with open_stack(root, "--deploy-timeout", "30", "--upload-ttl", "3") as stack:
        yield stack


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_random_image(url: str, auth: httpx.BasicAuth, tag: str, rng: random.Random) -> None:
    """A config and a 3 MB layer (uploaded in chunks), then the manifest: raw registry calls,
    so a kill can land between any two of them."""
    layer = rng.randbytes(3 * 1024 * 1024)
    config = json.dumps({"architecture": "amd64", "os": "linux", "tag": tag}).encode()
    with httpx.Client(base_url=url, auth=auth, timeout=30) as client:
        for blob in (config, layer):
            started = client.post("/v2/team/kl/blobs/uploads/")
            started.raise_for_status()
            location = started.headers["location"]
            for offset in range(0, len(blob), 512 * 1024):
                chunk = blob[offset : offset + 512 * 1024]
                end = offset + len(chunk) - 1
                patched = client.patch(
                    location,
                    content=chunk,
                    headers={"Content-Range": f"{offset}-{end}"},
                )
                patched.raise_for_status()
                location = patched.headers["location"]
            client.put(location, params={"digest": sha256(blob)}).raise_for_status()
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha256(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": sha256(layer),
                    "size": len(layer),
                }
            ],
        }
        client.put(
            f"/v2/team/kl/manifests/{tag}",
            content=json.dumps(manifest).encode(),
            headers={"Content-Type": OCI_MANIFEST},
        ).raise_for_status()


def kill_haproxy(baepo: BaepoProcess) -> bool:
    pidfile = Config(data_dir=baepo.data_dir).router_run_dir / "haproxy.pid"
    try:
        os.kill(int(pidfile.read_text().split()[0]), signal.SIGKILL)
    except (OSError, ValueError):
        return False
    return True


def in_background(stack: Stack, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "baepo", *args],
        env={**os.environ, **stack.env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> None:
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def live_services(stack: Stack) -> dict[str, dict[str, object]]:
    rows = json.loads(stack.cli("services", "list", "--json").stdout)
    return {row["name"]: row for row in rows}


def test_kill_9_at_random_points_leaves_everything_whole(stack: Stack) -> None:
    rng = random.Random(SEED)
    print(f"seed {SEED}, {TRIALS} trials")
    images = {
        "1": stack.push("baepo-test/hello:1", "team/kl-app:1"),
        "2": stack.push("baepo-test/hello:2", "team/kl-app:2"),
    }
    for name in SERVICES:
        stack.cli("services", "create", name, "--image", images["1"], "--wait")
    pushed: list[str] = []
    for trial in range(TRIALS):
        action = rng.choice(["push", "deploy", "delete", "create"])
        victim = rng.choice(["baepo", "baepo", "haproxy"])
        delay = rng.uniform(0.0, 1.5)
        service = rng.choice(SERVICES)
        version = rng.choice(["1", "2"])
        print(f"trial {trial}: {action} {service} v{version}, kill {victim} after {delay:.2f}s")
        worker: threading.Thread | None = None
        process: subprocess.Popen[str] | None = None
        if action == "push":
            tag = f"t{trial}"
            pushed.append(tag)
            seed = rng.random()

            def push(tag: str = tag, seed: float = seed) -> None:
                # Cut off by the kill, the image must then be absent or whole.
                with contextlib.suppress(httpx.HTTPError):
                    push_random_image(stack.baepo.url, stack.baepo.admin, tag, random.Random(seed))

            worker = threading.Thread(target=push)
            worker.start()
        elif action == "deploy":
            process = in_background(
                stack, "services", "deploy", service, "--image", images[version]
            )
        elif action == "delete":
            process = in_background(stack, "services", "rm", service)
        else:
            process = in_background(
                stack, "services", "create", service, "--image", images[version]
            )
        time.sleep(delay)
        if victim == "baepo":
            stack.baepo.kill()
        else:
            kill_haproxy(stack.baepo)
        if worker is not None:
            worker.join(timeout=60)
        if process is not None:
            finish(process)
        if victim == "baepo":
            stack.baepo.start()

    # Every service converges to what Baepo last accepted for it.
    services = live_services(stack)
    running_services: list[str] = []
    for name in services:
        described = stack.wait_idle(name, timeout=180)
        if described["status"] != "RUNNING" or described["active_revision"] is None:
            continue
        running_services.append(name)
        revisions = json.loads(stack.cli("services", "revisions", name, "--json").stdout)
        active = next(r for r in revisions if r["number"] == described["active_revision"])
        expected = "hello v2" if str(active["image"]).endswith(":2") else "hello v1"
        stack.wait_for(f"{name}.localhost", expected, timeout=120)

    # No container but those of live services, one each (min_instances 1).
    engine = DockerEngine(os.environ["DOCKER_HOST"])
    try:
        deadline = time.monotonic() + 120
        while True:
            running = [
                i.labels.get("baepo.service", "?")
                for name in SERVICES
                for i in engine.list({"baepo.service": name})
                if i.running
            ]
            wanted = sorted(running_services)
            if sorted(running) == wanted or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert sorted(running) == wanted
    finally:
        engine.close()

    # A deleted service has no route: its host is one the router does not know.
    for name in set(SERVICES) - set(services):
        answer = stack.curl(f"{name}.localhost")
        assert "404" in answer.stdout or answer.returncode != 0, answer

    # Every pushed image is whole or absent.
    with httpx.Client(base_url=stack.baepo.url, auth=stack.baepo.admin, timeout=30) as client:
        for tag in pushed:
            found = client.get(f"/v2/team/kl/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
            if found.status_code == 404:
                continue
            assert found.status_code == 200, found.text
            manifest = found.json()
            for blob in [manifest["config"], *manifest["layers"]]:
                head = client.head(f"/v2/team/kl/blobs/{blob['digest']}")
                assert head.status_code == 200, (tag, blob)
                assert int(head.headers["content-length"]) == blob["size"]

    # No upload file outlives its session (they expire after 3 s here), on disk or in S3.
    deadline = time.monotonic() + 60
    while BACKENDS.stored_uploads(stack.baepo.data_dir) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert BACKENDS.stored_uploads(stack.baepo.data_dir) == set()
