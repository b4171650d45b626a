"""The translation between Baepo's instances and Swarm's services and tasks, without a swarm:
the service body a `ContainerSpec` becomes, the node an instance is placed on, the `Instance`
a service and its task read as, and the events a change between two listings makes."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from baepo.runtime import ContainerSpec, Instance, Mount
from baepo.runtime.swarm import _changes
from baepo.runtime.swarm_specs import (
    STOPPED,
    Node,
    choose_node,
    credentials_header,
    instance_of,
    latest_task,
    pinned_node,
    service_body,
)

UP = {"n1": Node("n1", "node-1", True, True), "n2": Node("n2", "node-2", True, True)}
DOWN = {"n1": Node("n1", "node-1", False, True), "n2": Node("n2", "node-2", True, True)}


def test_a_spec_becomes_one_pinned_replica_that_swarm_never_restarts() -> None:
    spec = ContainerSpec(
        image="registry:5000/app@sha256:" + "a" * 64,
        name="baepo-app-1-abc",
        port=8080,
        command=["serve", "--fast"],
        env={"PORT": "8080"},
        labels={"baepo.service": "app"},
        cpu=0.5,
        memory_mb=256,
        network="baepo-x-app",
        mounts=[Mount("/srv", "/data", read_only=True)],
        workdir="/app",
    )

    body = service_body(spec, "n2", ("CHOWN",), stop_grace_s=30)

    labels = {"baepo.service": "app", "baepo.managed": "true", "baepo.port": "8080"}
    assert body["Name"] == "baepo-app-1-abc" and body["Labels"] == labels
    assert body["Mode"] == {"Replicated": {"Replicas": 1}}
    assert body["EndpointSpec"] == {"Mode": "dnsrr"}  # no virtual IP: no IPVS here
    task = body["TaskTemplate"]
    assert task["RestartPolicy"] == {"Condition": "none"}
    assert task["Placement"] == {"Constraints": ["node.id==n2"]}
    assert task["Networks"] == [{"Target": "baepo-x-app"}]
    assert task["Resources"]["Limits"] == {
        "NanoCPUs": 500_000_000,
        "MemoryBytes": 256 * 1024 * 1024,
        "Pids": 512,
    }
    container = task["ContainerSpec"]
    assert container["Args"] == ["serve", "--fast"] and "Command" not in container
    assert container["Labels"] == labels and container["Env"] == ["PORT=8080"]
    assert container["CapabilityDrop"] == ["ALL"] and container["CapabilityAdd"] == ["CHOWN"]
    assert container["StopGracePeriod"] == 30_000_000_000 and container["Dir"] == "/app"
    assert container["Mounts"] == [
        {"Type": "bind", "Source": "/srv", "Target": "/data", "ReadOnly": True}
    ]


def test_a_service_is_counted_on_the_node_it_is_pinned_to() -> None:
    body = service_body(ContainerSpec(image="app"), "n2", (), stop_grace_s=1)
    assert pinned_node(body) == "n2"
    assert pinned_node({"Mode": {"Replicated": {"Replicas": 1}}}) is None  # not Baepo's


def test_credentials_go_to_swarm_in_the_registry_auth_header() -> None:
    assert credentials_header(None) == {}
    header = credentials_header(("robot", "s3cret"))
    assert list(header) == ["X-Registry-Auth"] and header["X-Registry-Auth"]


@pytest.mark.parametrize(
    ("same", "everything", "expected"),
    [
        ({}, {}, "n1"),  # nothing anywhere: the first by id
        ({"n1": 1}, {"n1": 1}, "n2"),  # spread the service
        ({"n1": 1, "n2": 1}, {"n1": 1, "n2": 5}, "n1"),  # then the emptier node
        ({"n2": 2}, {"n1": 9}, "n1"),  # the service's spread comes first
    ],
)
def test_a_new_instance_goes_where_its_service_has_the_fewest(
    same: dict[str, int], everything: dict[str, int], expected: str
) -> None:
    nodes = [*UP.values(), Node("n0", "node-0", True, False)]  # n0 is drained: never chosen
    assert choose_node(nodes, Counter(same), Counter(everything)) == expected


def test_no_ready_node_is_an_error() -> None:
    with pytest.raises(ValueError, match="no swarm node"):
        choose_node([DOWN["n1"]], Counter(), Counter())


def service(port: str | None = "8080") -> dict[str, Any]:
    labels = {"baepo.managed": "true", "baepo.service": "app"}
    if port is not None:
        labels["baepo.port"] = port
    return {
        "ID": "svc1",
        "Spec": {
            "Name": "baepo-app-1-abc",
            "Labels": labels,
            "TaskTemplate": {
                "ContainerSpec": {"Image": "r/app@sha256:" + "b" * 64, "CapabilityDrop": ["ALL"]},
                "Resources": {"Limits": {"NanoCPUs": 250_000_000, "MemoryBytes": 64 << 20}},
                "Networks": [{"Target": "net1"}],
            },
        },
    }


def task(state: str, node: str = "n1", **status: Any) -> dict[str, Any]:
    return {
        "ID": "t1",
        "ServiceID": "svc1",
        "NodeID": node,
        "CreatedAt": "2026-12-03T06:00:00.123456789Z",
        "Status": {
            "State": state,
            "Timestamp": "2026-12-03T06:00:05Z",
            "ContainerStatus": {"ContainerID": "c1", "ExitCode": status.pop("exit_code", 0)},
            **status,
        },
        "NetworksAttachments": [
            {"Network": {"ID": "ingress0", "Spec": {"Name": "ingress"}},
             "Addresses": ["10.0.0.9/24"]},
            {"Network": {"ID": "net1", "Spec": {"Name": "baepo-x-app"}},
             "Addresses": ["10.232.1.7/24"]},
        ],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("state", "nodes", "expected", "error"),
    [
        ("pending", UP, "created", ""),
        ("preparing", UP, "created", ""),
        ("running", UP, "running", ""),
        ("running", DOWN, "dead", "node node-1 is down"),
        ("complete", UP, "exited", ""),
        ("shutdown", UP, "exited", ""),
        ("rejected", UP, "dead", "task rejected"),
        ("orphaned", UP, "dead", "task orphaned"),
        ("remove", UP, "removing", ""),
    ],
)
def test_a_task_state_reads_as_an_instance_state(
    state: str, nodes: dict[str, Node], expected: str, error: str
) -> None:
    instance = instance_of(service(), task(state), nodes)

    assert (instance.state, instance.error) == (expected, error)
    assert instance.node == "node-1"
    assert (instance.address is not None) == (expected == "running")


def test_a_running_instance_is_reached_at_its_own_networks_address() -> None:
    instance = instance_of(service(), task("running"), UP)

    assert instance.id == "svc1" and instance.name == "baepo-app-1-abc"
    assert instance.address == "10.232.1.7:8080" and instance.url == "http://10.232.1.7:8080"
    assert instance.image_id == "sha256:" + "b" * 64
    assert instance.limits.cpu == 0.25 and instance.limits.memory_mb == 64
    assert instance.started_at is not None and instance.finished_at is None


def test_an_exit_keeps_its_code_and_time_and_a_refusal_swarms_words() -> None:
    failed = instance_of(service(), task("failed", exit_code=3, Err="task: non-zero exit (3)"), UP)
    assert (failed.state, failed.exit_code, failed.error) == (
        "exited",
        3,
        "task: non-zero exit (3)",
    )
    assert failed.finished_at is not None

    refused = instance_of(service(), task("rejected", Err="No such image: r/app"), UP)
    assert (refused.state, refused.error, refused.exit_code) == (
        "dead",
        "No such image: r/app",
        None,
    )


def test_a_service_without_a_task_yet_is_created_and_one_without_a_port_has_no_address() -> None:
    assert instance_of(service(), None, UP).state == "created"
    assert instance_of(service(port=None), task("running"), UP).address is None


def test_a_stopped_instance_is_its_ended_task_not_the_one_left_pending() -> None:
    ended = task("shutdown", exit_code=143)
    pending = {
        **task("pending"),
        "CreatedAt": "2026-12-03T07:00:00Z",
        "Status": {"State": "pending"},
    }
    stopped = service()
    stopped["Spec"]["TaskTemplate"]["Placement"] = {"Constraints": ["node.id==n1", STOPPED]}

    instance = instance_of(stopped, latest_task([ended, pending]), UP)

    assert (instance.state, instance.exit_code) == ("exited", 143)
    assert pinned_node(stopped["Spec"]) is None  # a stopped instance takes no room


def test_the_newest_task_is_the_instances() -> None:
    old = {**task("shutdown"), "CreatedAt": "2026-12-03T05:00:00Z"}
    new = task("running")
    assert latest_task([new, old]) is new and latest_task([]) is None


def listed(state: str, nodes: dict[str, Node] = UP) -> Instance:
    return instance_of(service(), task(state), nodes)


def test_two_listings_differ_by_starts_deaths_and_removals() -> None:
    starting, running, lost = listed("starting"), listed("running"), listed("running", DOWN)

    assert [e.action for e in _changes({"svc1": starting}, {"svc1": running})] == ["start"]
    died = list(_changes({"svc1": running}, {"svc1": lost}))
    assert [(e.action, e.instance_id) for e in died] == [("die", "svc1")]
    assert [e.action for e in _changes({"svc1": running}, {})] == ["destroy"]
    assert list(_changes({"svc1": running}, {"svc1": running})) == []
    assert [e.action for e in _changes({}, {"svc1": running})] == ["start"]
    crashed = listed("failed")  # started and ended between two listings
    assert [e.action for e in _changes({"svc1": starting}, {"svc1": crashed})] == ["start", "die"]
    assert [e.action for e in _changes({}, {"svc1": crashed})] == ["start", "die"]
    assert list(_changes({"svc1": crashed}, {"svc1": crashed})) == []
