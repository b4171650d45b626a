"""`SwarmEngine` on a real Docker Swarm: three dockerds in network namespaces of their own
(`scripts/swarm-cluster`), a registry they pull from with credentials (CNCF distribution with
htpasswd, on the host's address on the nodes' bridge), and the edge through which this process,
standing where Baepo and its router run, reaches the tasks' overlay addresses (docs/swarm.md).

The cluster is started for the session unless it already runs, and then taken down again
(tests/swarm_cluster.py); a test that stops a node's dockerd starts it again, pass or fail.
At the end, without a swarm: a node's engine going and coming back, through fake engines.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from baepo.runtime import ContainerNotFound, ContainerSpec, Instance, StartFailed
from baepo.runtime.engine import EngineEvent
from baepo.runtime.swarm import SwarmEngine
from baepo.runtime.swarm_edge import Edge
from tests.fakes.socket_engine import API_VERSION, Request, SocketEngine, send_json
from tests.runtime.conftest import SwarmImages, copy_in, remove_all
from tests.runtime.waiting import answering, eventually
from tests.swarm_cluster import WORKER_ENGINES, restore, stop_dockerd

WORKER = 3  # the node whose dockerd a test stops
CREDENTIALS = ("robot", "s3cret")  # tests/runtime/registries.py's user

integration = pytest.mark.integration


@pytest.fixture
def swarm(swarm_manager: str) -> str:
    return swarm_manager


@pytest.fixture
def images(swarm_images: SwarmImages) -> SwarmImages:
    return swarm_images


@pytest.fixture
def edge(swarm_edge: Edge) -> Edge:
    return swarm_edge


@pytest.fixture
def labels() -> dict[str, str]:
    """Labels unique to the test: its instances and networks carry them."""
    return {"baepo.test.run": uuid.uuid4().hex, "baepo.service": "app"}


@pytest.fixture
def engine(swarm: str, edge: Edge, labels: dict[str, str]) -> Iterator[SwarmEngine]:
    """A `SwarmEngine` whose instances and networks the test made are removed after it."""
    made = SwarmEngine(
        swarm,
        edge=edge,
        start_timeout_s=120,
        stop_grace_s=2,
        poll_s=0.2,
        node_engines=WORKER_ENGINES,
    )
    yield made
    remove_all(made, labels)
    made.close()


@pytest.fixture
def start(
    engine: SwarmEngine, images: SwarmImages, labels: dict[str, str]
) -> Callable[[str], Instance]:
    """Start an instance of hello:1 named `name`, on the test's own overlay network."""
    network = f"baepo-test-{labels['baepo.test.run'][:12]}"
    engine.ensure_network(network, labels)

    def run(name: str) -> Instance:
        spec = ContainerSpec(
            image=images.hello,
            name=f"baepo-test-{name}-{labels['baepo.test.run'][:6]}",
            port=8080,
            labels={**labels, "baepo.instance": name},
            network=network,
            cpu=0.25,
            memory_mb=64,
            pull_auth=CREDENTIALS,
        )
        return engine.run(spec)

    return run


@integration
def test_three_instances_land_on_three_nodes_and_answer_where_the_router_runs(
    engine: SwarmEngine, start: Callable[[str], Instance], labels: dict[str, str]
) -> None:
    # Started at once, as the reconciler starts a service's instances.
    with ThreadPoolExecutor(3) as pool:
        started = list(pool.map(start, [f"app-{n}" for n in range(3)]))

    listed = {i.id: i for i in engine.list(labels)}
    assert set(listed) == {i.id for i in started}
    assert {i.node for i in listed.values()} == {f"baepo-swarm-{n}" for n in (1, 2, 3)}
    for instance in listed.values():
        assert instance.running and instance.address is not None
        assert (
            instance.labels["baepo.managed"] == "true" and instance.labels["baepo.port"] == "8080"
        )
        assert instance.limits.cpu == 0.25 and instance.limits.memory_mb == 64
        # From this process, as the router and the health probes reach it.
        assert answering(f"{instance.url}/").text.startswith("hello v1")


@integration
def test_usage_is_read_from_the_engine_of_the_node_an_instance_runs_on_if_it_is_named(
    engine: SwarmEngine,
    swarm: str,
    start: Callable[[str], Instance],
    labels: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(start, [f"app-{n}" for n in range(3)]))
    on = {i.node: i.id for i in engine.list(labels)}
    assert set(on) == {"baepo-swarm-1", "baepo-swarm-2", "baepo-swarm-3"}

    for instance_id in on.values():  # the manager's from its own engine, the workers' theirs
        usage = engine.usage(instance_id)
        assert usage is not None
        assert usage.cpu_ns > 0 and 0 < usage.memory_bytes <= 64 << 20
        assert usage.memory_limit_bytes == 64 << 20

    # Node 2's engine not named, node 3's not answering: no usage, one warning each.
    partial = SwarmEngine(swarm, node_engines={"baepo-swarm-3": "unix:///run/baepo-swarm/none"})
    with caplog.at_level(logging.WARNING, logger="baepo.runtime.swarm"):
        for _ in range(2):
            assert partial.usage(on["baepo-swarm-2"]) is None
            assert partial.usage(on["baepo-swarm-3"]) is None
        assert partial.usage(on["baepo-swarm-1"]) is not None
    partial.close()
    warnings = [r.getMessage() for r in caplog.records if r.name == "baepo.runtime.swarm"]
    assert len(warnings) == 2
    assert "baepo-swarm-2: no engine of it is configured" in warnings[0]
    assert "baepo-swarm-3: cannot read the usage" in warnings[1]


@integration
def test_an_edge_restarted_is_linked_and_routed_again_at_the_next_listing(
    engine: SwarmEngine, edge: Edge, swarm: str, start: Callable[[str], Instance]
) -> None:
    instance = start("app")
    # A restart gives the edge a new network namespace: the host's end of the link goes.
    subprocess.run(
        ["docker", "-H", swarm, "restart", "-t", "0", edge.name], check=True, capture_output=True
    )
    assert not Path("/sys/class/net", "baepo-edge-t0").exists()

    engine.list({})

    assert answering(f"{instance.url}/").text.startswith("hello v1")


@integration
def test_nodes_pull_with_the_credentials_handed_to_swarm_and_a_refused_start_leaves_nothing(
    engine: SwarmEngine,
    images: SwarmImages,
    labels: dict[str, str],
    docker_host: str,
    tmp_path: Path,
) -> None:
    # A repository no node has pulled yet: each must fetch it from the registry.
    fresh = f"{images.registry}/fresh-{uuid.uuid4().hex[:8]}/hello"
    image = copy_in(docker_host, "baepo-test/hello:1", fresh, tmp_path)
    spec = ContainerSpec(image=image, port=8080, labels=labels)

    with pytest.raises(StartFailed, match="cannot start"):
        engine.run(spec)
    assert engine.list(labels) == []

    started = engine.run(replace(spec, pull_auth=CREDENTIALS))
    assert engine.inspect(started.id).running


@integration
def test_a_workers_lost_dockerd_shows_its_instance_dead_and_a_replacement_lands_elsewhere(
    engine: SwarmEngine, start: Callable[[str], Instance], labels: dict[str, str]
) -> None:
    started = [start(f"app-{n}") for n in range(3)]
    on_worker = next(i for i in engine.list(labels) if i.node == f"baepo-swarm-{WORKER}")
    events = engine.events(labels)
    seen: list[EngineEvent] = []
    watcher = threading.Thread(target=lambda: seen.extend(events), daemon=True)
    watcher.start()
    try:
        stop_dockerd(WORKER)

        def dead() -> Instance | None:
            instance = engine.inspect(on_worker.id)
            return instance if instance.state == "dead" else None

        lost = eventually(dead, 90, "the worker's instance listed dead")
        assert lost.error == f"node baepo-swarm-{WORKER} is down"
        assert lost.address is None and not lost.running
        eventually(
            lambda: next((e for e in seen if e.instance_id == on_worker.id), None),
            30,
            "an event for it",
        )
        assert [e.action for e in seen if e.instance_id == on_worker.id] == ["die"]

        # What the reconciler does with a dead instance: remove it, start a replacement.
        engine.remove(lost.id)
        replacement = start("app-3")

        assert replacement.node in {"baepo-swarm-1", "baepo-swarm-2"}
        assert answering(f"{replacement.url}/").text.startswith("hello v1")
        live = [i for i in engine.list(labels) if i.running]
        assert {i.id for i in live} == {i.id for i in started if i.id != lost.id} | {replacement.id}
    finally:
        events.close()
        watcher.join(timeout=10)
        restore()  # the worker's dockerd again, back in the swarm


# -- without a swarm: a fake manager and a fake node engine ----------------------------------

MANAGER_ANSWERS: dict[str, object] = {
    "/info": {"Swarm": {"NodeID": "n1", "ControlAvailable": True}},
    "/services/s1": {"ID": "s1", "Spec": {"Labels": {"baepo.managed": "true"}}},
    "/tasks": [
        {
            "ServiceID": "s1",
            "NodeID": "n2",
            "Status": {"State": "running", "ContainerStatus": {"ContainerID": "c1"}},
        }
    ],
    "/nodes": [
        {"ID": f"n{n}", "Description": {"Hostname": f"node-{n}"}, "Status": {"State": "ready"}}
        for n in (1, 2)
    ],
}
STATS = {
    "read": "2026-12-03T10:00:00Z",
    "cpu_stats": {"cpu_usage": {"total_usage": 5_000_000}},
    "memory_stats": {"usage": 3 << 20, "limit": 64 << 20},
}


def test_a_node_engine_that_stops_answering_is_told_once_until_it_answers_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def manager(request: Request, connection: socket.socket) -> None:
        path = request.path.removeprefix(f"/v{API_VERSION}")
        found = MANAGER_ANSWERS.get(path)
        send_json(connection, 404 if found is None else 200, found or {"message": "no such"})

    answering = threading.Event()

    def node(request: Request, connection: socket.socket) -> None:
        if answering.is_set() and request.path.endswith("/containers/c1/stats"):
            send_json(connection, 200, STATS)
        # else: hang up, no answer

    with (
        SocketEngine(tmp_path / "manager.sock", manager) as fake_manager,
        SocketEngine(tmp_path / "node.sock", node) as fake_node,
    ):
        engine = SwarmEngine(fake_manager.url, node_engines={"node-2": fake_node.url})
        with caplog.at_level(logging.WARNING, logger="baepo.runtime.swarm"):
            readings = [engine.usage("s1"), engine.usage("s1")]
            answering.set()
            readings.append(engine.usage("s1"))
            answering.clear()
            readings.append(engine.usage("s1"))
            with pytest.raises(ContainerNotFound):
                engine.usage("s2")
        engine.close()

    assert readings[:2] == [None, None] and readings[3] is None
    assert readings[2] is not None
    assert (readings[2].cpu_ns, readings[2].memory_bytes) == (5_000_000, 3 << 20)
    warnings = [r.getMessage() for r in caplog.records if r.name == "baepo.runtime.swarm"]
    assert len(warnings) == 2, warnings  # once for each time it stopped answering
    assert all(w.startswith("no usage of the instances on swarm node node-2: ") for w in warnings)
