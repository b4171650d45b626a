"""Baepo on the test Docker Swarm, end to end (docs/swarm.md): `baepo up --swarm-edge-image`
against the cluster's manager, a service made with the defaults a user gets (port 8080, a TCP
health check) and deployed with the CLI, the nodes pulling from
Baepo's own registry with the credentials Baepo hands Swarm, requests through the real router
(HAProxy on this machine, reaching the tasks through the edge) under wrk's load, and each
instance's memory read from its node's engine (`--swarm-node-engine`).

Baepo listens on every address here (`--host 0.0.0.0`): the nodes pull from it at this
machine's address on their bridge (`--registry-pull-host`).
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from baepo.control import SecretBox, load_or_create_secret_key
from baepo.runtime import LABEL_INSTANCE, ContainerNotFound, Edge, Instance, SwarmEngine
from tests.clients import docker_host
from tests.e2e.conftest import Stack, open_stack
from tests.e2e.test_autoscaling import CLIENTS, SLOW, SlowLoad
from tests.swarm_cluster import HOST_ADDRESS, WORKER_ENGINES, restore, stop_dockerd

pytestmark = pytest.mark.integration

EDGE_IMAGE = "baepo-test/busybox:1"
WORKER = 3
LOAD_CONNECTIONS = 8


@pytest.fixture(scope="module")
def swarm_stack(
    swarm_manager: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, SwarmEngine]]:
    root = tmp_path_factory.mktemp("swarm-stack")
    manager = swarm_manager
    copy_image(docker_host(), EDGE_IMAGE, manager)
    flags = (
        "--host", "0.0.0.0", "--registry-pull-host", HOST_ADDRESS,
        "--docker-host", manager, "--swarm-edge-image", EDGE_IMAGE, "--deploy-timeout", "60",
        *(f for n, url in WORKER_ENGINES.items() for f in ("--swarm-node-engine", f"{n}={url}")),
    )  # fmt: skip
    engine = SwarmEngine(manager)
    try:
        with open_stack(root, *flags) as stack:
            yield stack, engine
    finally:
        # The edge first: it holds every service network it is attached to.
        Edge(manager, EDGE_IMAGE).remove()
        remove_installation(engine, root / "data")


def copy_image(source: str, image: str, target: str) -> None:
    """`docker save | docker load` from one engine into another."""
    saved = subprocess.Popen(["docker", "-H", source, "save", image], stdout=subprocess.PIPE)
    subprocess.run(
        ["docker", "-H", target, "load", "-q"], stdin=saved.stdout, check=True, timeout=120,
        capture_output=True,
    )  # fmt: skip
    assert saved.wait(timeout=60) == 0


def remove_installation(engine: SwarmEngine, data_dir: Path) -> None:
    """The services and networks the Baepo of `data_dir` left on the swarm."""
    key = data_dir / "secrets" / "control.key"
    if not key.exists():
        return
    mine = {"baepo.installation": SecretBox(load_or_create_secret_key(key)).fingerprint}
    for instance in engine.list(mine):
        with contextlib.suppress(ContainerNotFound):
            engine.remove(instance.id)
    deadline = time.monotonic() + 60
    for network in engine.networks(mine):
        while True:  # a network's endpoints go a moment after its services
            try:
                engine.remove_network(network.name)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


def serving(engine: SwarmEngine, service: str) -> list[Instance]:
    return [i for i in engine.list({"baepo.service": service}) if i.running]


def test_three_instances_on_three_nodes_a_deploy_and_a_lost_worker_under_load(
    swarm_stack: tuple[Stack, SwarmEngine],
) -> None:
    stack, engine = swarm_stack
    name = f"swarm-{secrets.token_hex(2)}"
    host = f"{name}.localhost"
    images = [stack.push(f"baepo-test/hello:{v}", f"team/{name}:v{v}") for v in (1, 2)]
    stack.cli(
        "services", "create", name, "--image", images[0],
        "--min-instances", "3", "--max-instances", "3", "--no-auto-deploy", "--wait",
    )  # fmt: skip
    stack.wait_for(host, "hello v1")
    assert stack.describe(name)["config"]["health_check"]["protocol"] == "tcp"  # type: ignore[index]
    nodes = {i.node for i in serving(engine, name)}
    assert nodes == {"baepo-swarm-1", "baepo-swarm-2", "baepo-swarm-3"}
    # The router and its TCP check reach the app itself: nothing on the way accepts a
    # connection for it (a port nothing listens on is refused, as the app's port would be).
    for instance in serving(engine, name):
        assert instance.address is not None
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((instance.address.rsplit(":", 1)[0], 9999), timeout=10)

    with stack.load(host, 8, 300) as deploy:
        stack.cli("services", "deploy", name, "--image", images[1], "--wait")
    print(deploy.output)
    requests, socket_errors, bad = deploy.counts()
    assert requests > 200, deploy.output
    assert (socket_errors, bad) == (0, 0), deploy.output
    assert "hello v2" in stack.https(host).text
    assert memory_shown(stack, name, {i.labels[LABEL_INSTANCE] for i in serving(engine, name)})

    try:
        with stack.load(host, LOAD_CONNECTIONS, 300) as loss:
            stop_dockerd(WORKER)
            replaced = replacement_elsewhere(stack, engine, name)
        print(loss.output)
        requests, socket_errors, bad = loss.counts()
        assert requests > 200, loss.output
        # The node's dockerd stops the app gracefully (SIGTERM): it answers what it accepted
        # and refuses new connections, which go to another instance; a request that reached
        # it as it closed (reset unanswered) is sent to another too (a GET: safe to repeat).
        assert (socket_errors, bad) == (0, 0), loss.output
        assert len(replaced) == 3
        events = stack.cli("services", "events", name, "--json").stdout
        assert f"is lost: node baepo-swarm-{WORKER} is down; replacing it" in events
    finally:
        restore()
    stack.cli("services", "rm", name, "--wait")


def memory_shown(stack: Stack, service: str, instances: set[str]) -> bool:
    """Whether `GET /metrics` shows the memory of each of `instances` (read every 10 s) within
    30 s: those on the workers come from their nodes' engines."""
    deadline = time.monotonic() + 30
    with stack.baepo.api() as api:
        while time.monotonic() < deadline:
            shown = {
                s.labels["instance"]
                for family in text_string_to_metric_families(api.get("/metrics").text)
                for s in family.samples
                if s.name == "baepo_instance_memory_bytes"
                and s.labels["service"] == service
                and s.value > 0
            }
            if instances <= shown:
                return True
            time.sleep(1)
    return False


def replacement_elsewhere(stack: Stack, engine: SwarmEngine, name: str) -> list[Instance]:
    """Three instances again, none on the lost worker, once the service is idle again."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        live = serving(engine, name)
        if len(live) == 3 and all(i.node != f"baepo-swarm-{WORKER}" for i in live):
            stack.wait_idle(name)
            return live
        time.sleep(0.5)
    raise AssertionError(f"not replaced: {engine.list({'baepo.service': name})}")


def test_the_autoscaler_grows_a_service_over_the_nodes_and_every_request_is_answered(
    swarm_stack: tuple[Stack, SwarmEngine],
) -> None:
    """Autoscaling keeps its contract on Swarm: more concurrent requests than one instance
    takes start more, on other nodes, each gated on the health check before it is routed."""
    stack, engine = swarm_stack
    name = f"swarm-scaled-{secrets.token_hex(2)}"
    host = f"{name}.localhost"
    image = stack.push("baepo-test/hello:1", f"team/{name}:1")
    stack.cli(
        "services", "create", name, "--image", image, "--command", SLOW,
        "--min-instances", "1", "--max-instances", "3", "--max-concurrency", "2", "--wait",
    )  # fmt: skip
    assert stack.https(host, "/cgi-bin/slow.cgi").text.strip() == "slow"
    with SlowLoad(stack, host) as load:
        deadline = time.monotonic() + 90
        while len(serving(engine, name)) < 3 and time.monotonic() < deadline:
            time.sleep(0.5)
        grown = serving(engine, name)
        served = sum(load.answers.values())
        while sum(load.answers.values()) < served + 2 * CLIENTS and time.monotonic() < deadline:
            time.sleep(0.2)
    assert len(grown) == 3, f"{len(grown)} instances under {CLIENTS} slow clients"
    assert len({i.node for i in grown}) == 3, [i.node for i in grown]
    assert set(load.answers) == {"200"}, load.answers
    stack.cli("services", "rm", name, "--wait")
