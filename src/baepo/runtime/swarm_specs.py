"""What `SwarmEngine` sends to and reads from a Swarm manager: pure functions over its JSON.

One Baepo instance is one Swarm service of one replica (docs/swarm.md says why), so:

    ContainerSpec            → a service body (`service_body`): the service and its container
                               carry the labels, the task template the limits, the restart
                               policy is "none" (the engine never restarts an instance), the
                               endpoint mode DNS round-robin (no virtual IP: no IPVS here), and
                               a constraint pins the task to the node `choose_node` picked
    a service and its task   → an `Instance` (`instance_of`): the instance's id is the
                               service's, its state the task's, read in Docker's words:

        task state                                  instance state
        new … ready (scheduled, pulling, starting)  created
        running                                     running
        running, on a node the manager sees down    dead   (error: "node … is down")
        complete, failed, shutdown                  exited (exit code: the container's)
        rejected, orphaned                          dead   (error: the task's)
        remove                                      removing
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from baepo.runtime.engine import (
    LABEL_MANAGED,
    LABEL_PORT,
    ContainerSpec,
    Credentials,
    Instance,
    InstanceState,
    Limits,
)
from baepo.runtime.engine_http import registry_auth, timestamp

_CREATED = {"new", "pending", "assigned", "accepted", "preparing", "starting", "ready"}
_EXITED = {"complete", "failed", "shutdown"}
TERMINAL = _EXITED | {"rejected", "orphaned", "remove"}
"""Task states a task never leaves."""

STOPPED = "node.labels.baepo-stopped==true"
"""The placement constraint `stop` adds: no node has that label, so Swarm shuts the task
down for one that never starts. Scaling to 0 would delete the task, and with it its
container, its exit code and its output, which Baepo keeps after a stop."""


@dataclass(frozen=True)
class Node:
    """A swarm node as the manager sees it."""

    id: str
    hostname: str
    ready: bool  # its status is "ready" (the manager hears its heartbeats)
    active: bool  # its availability is "active" (it takes new tasks)


def node_of(attrs: Mapping[str, Any]) -> Node:
    status = attrs.get("Status") or {}
    spec = attrs.get("Spec") or {}
    return Node(
        id=str(attrs.get("ID") or ""),
        hostname=str((attrs.get("Description") or {}).get("Hostname") or ""),
        ready=status.get("State") == "ready",
        active=spec.get("Availability", "active") == "active",
    )


def choose_node(nodes: Sequence[Node], same_service: Counter[str], everything: Counter[str]) -> str:
    """The node for a new instance: among the ready, active nodes, the one with the fewest
    instances of the same service (spread), then the fewest instances at all, then the first
    by id (the same answer for the same picture). `ValueError` if no node takes tasks."""
    candidates = [n for n in nodes if n.ready and n.active]
    if not candidates:
        raise ValueError("no swarm node is ready and active")
    best = min(candidates, key=lambda n: (same_service[n.id], everything[n.id], n.id))
    return best.id


def service_body(
    spec: ContainerSpec,
    node_id: str,
    capabilities: tuple[str, ...],
    stop_grace_s: float,
) -> dict[str, Any]:
    """The body of POST /services/create for one instance of `spec` on `node_id`.

    `spec.command` replaces the image's CMD (Swarm's `Args`; its `Command` would replace the
    entrypoint), as `docker run IMAGE CMD…` does. Swarm sets no swap limit of its own: the
    container's swap follows the node's default."""
    labels = {
        **spec.labels,
        LABEL_MANAGED: "true",
        **({LABEL_PORT: str(spec.port)} if spec.port is not None else {}),
    }
    container: dict[str, Any] = {
        "Image": spec.image,
        "Labels": labels,
        "Env": [f"{key}={value}" for key, value in spec.env.items()],
        "CapabilityDrop": ["ALL"],
        "CapabilityAdd": list(capabilities),
        "StopGracePeriod": round(stop_grace_s * 1e9),
    }
    if spec.command is not None:
        container["Args"] = list(spec.command)
    if spec.workdir is not None:
        container["Dir"] = spec.workdir
    if spec.mounts:
        container["Mounts"] = [
            {"Type": "bind", "Source": m.source, "Target": m.target, "ReadOnly": m.read_only}
            for m in spec.mounts
        ]
    limits: dict[str, Any] = {}
    if spec.cpu is not None:
        limits["NanoCPUs"] = round(spec.cpu * 1e9)
    if spec.memory_mb is not None:
        limits["MemoryBytes"] = spec.memory_mb * 1024 * 1024
    if spec.pids_limit:
        limits["Pids"] = spec.pids_limit
    task: dict[str, Any] = {
        "ContainerSpec": container,
        "Resources": {"Limits": limits},
        "RestartPolicy": {"Condition": "none"},
        "Placement": {"Constraints": [f"node.id=={node_id}"]},
    }
    if spec.network:
        task["Networks"] = [{"Target": spec.network}]
    body: dict[str, Any] = {
        "Labels": labels,
        "TaskTemplate": task,
        "Mode": {"Replicated": {"Replicas": 1}},
        "EndpointSpec": {"Mode": "dnsrr"},
    }
    if spec.name:
        body["Name"] = spec.name
    return body


def pinned_node(spec: Mapping[str, Any]) -> str | None:
    """The node a service made by `service_body` is pinned to, while it runs (None once
    stopped: a stopped instance takes no room)."""
    constraints = constraints_of(spec)
    if STOPPED in constraints:
        return None
    for constraint in constraints:
        key, _, value = str(constraint).replace(" ", "").partition("==")
        if key == "node.id" and value:
            return value
    return None


def credentials_header(auth: Credentials | None) -> dict[str, str]:
    """The X-Registry-Auth header that hands `auth` to Swarm (every node pulls with it)."""
    if auth is None:
        return {}
    return {"X-Registry-Auth": registry_auth({"username": auth[0], "password": auth[1]})}


def latest_task(tasks: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """A one-replica service's task: the newest that got a container (a stopped instance's,
    not the one `stop` left pending for ever), else the newest, if it has any."""
    ran = [t for t in tasks if container_id(t) is not None]
    return max(ran or tasks, key=lambda t: str(t.get("CreatedAt") or ""), default=None)


def container_id(task: Mapping[str, Any] | None) -> str | None:
    """The id of the container `task` got on its node, if it got one."""
    status = (task or {}).get("Status") or {}
    return str((status.get("ContainerStatus") or {}).get("ContainerID") or "") or None


def instance_of(
    service: Mapping[str, Any], task: Mapping[str, Any] | None, nodes: Mapping[str, Node]
) -> Instance:
    spec = service.get("Spec") or {}
    template = spec.get("TaskTemplate") or {}
    container = template.get("ContainerSpec") or {}
    limits = (template.get("Resources") or {}).get("Limits") or {}
    labels = {str(k): str(v) for k, v in (spec.get("Labels") or {}).items()}
    port_label = labels.get(LABEL_PORT, "")
    port = int(port_label) if port_label.isdigit() else None
    image = str(container.get("Image") or "")
    status = (task or {}).get("Status") or {}
    container_status = status.get("ContainerStatus") or {}
    task_state = str(status.get("State") or "new")
    state, error = _state(task_state, str(status.get("Err") or ""), task, nodes)
    exit_code = int(container_status.get("ExitCode") or 0)
    exited = state == "exited"
    address = None
    if state == "running" and port is not None and task is not None:
        ip = _address(task, _network_ids(template))
        address = f"{ip}:{port}" if ip else None
    ran = container_id(task) is not None
    nano_cpus = int(limits.get("NanoCPUs") or 0)
    memory = int(limits.get("MemoryBytes") or 0)
    return Instance(
        id=str(service.get("ID") or ""),
        name=str(spec.get("Name") or ""),
        image=image,
        image_id=image.partition("@")[2],
        labels=labels,
        state=state,
        exit_code=exit_code if exited else None,
        port=port,
        address=address,
        # Swarm keeps no start time: the task's creation stands in for it once a container ran.
        started_at=timestamp((task or {}).get("CreatedAt")) if ran else None,
        finished_at=timestamp(status.get("Timestamp")) if task_state in TERMINAL else None,
        oom_killed=False,
        error=error,
        limits=Limits(
            cpu=nano_cpus / 1e9 if nano_cpus else None,
            memory_mb=memory // (1024 * 1024) if memory else None,
            pids_limit=int(limits.get("Pids") or 0) or None,
            # Swarm's API (1.41) has no no-new-privileges: the nodes' dockerd sets it.
            no_new_privileges=False,
            cap_drop=tuple(str(c) for c in container.get("CapabilityDrop") or ()),
            cap_add=tuple(str(c) for c in container.get("CapabilityAdd") or ()),
        ),
        node=_hostname(task, nodes),
    )


def _state(
    task_state: str, error: str, task: Mapping[str, Any] | None, nodes: Mapping[str, Node]
) -> tuple[InstanceState, str]:
    if task_state in _CREATED:
        return "created", error
    if task_state == "running":
        node = nodes.get(str((task or {}).get("NodeID") or ""))
        if node is None or not node.ready:
            return "dead", f"node {_hostname(task, nodes) or '(gone)'} is down"
        return "running", error
    if task_state in _EXITED:
        return "exited", error
    if task_state == "remove":
        return "removing", error
    return "dead", error or f"task {task_state}"


def constraints_of(spec: Mapping[str, Any]) -> list[str]:
    placement = (spec.get("TaskTemplate") or {}).get("Placement") or {}
    return [str(c) for c in placement.get("Constraints") or []]


def _hostname(task: Mapping[str, Any] | None, nodes: Mapping[str, Node]) -> str | None:
    node = nodes.get(str((task or {}).get("NodeID") or ""))
    return node.hostname if node is not None else None


def _network_ids(template: Mapping[str, Any]) -> list[str]:
    return [str(n.get("Target") or "") for n in template.get("Networks") or []]


def _address(task: Mapping[str, Any], networks: Sequence[str]) -> str | None:
    """The task's address on the instance's own network (the first one it asked for)."""
    attachments = task.get("NetworksAttachments") or []
    for attachment in attachments:
        network = attachment.get("Network") or {}
        names = {str(network.get("ID") or ""), str((network.get("Spec") or {}).get("Name") or "")}
        if networks and not names & set(networks):
            continue
        for cidr in attachment.get("Addresses") or []:
            return str(cidr).partition("/")[0]
    return None
