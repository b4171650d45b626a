"""`SwarmEngine`: the `Engine` interface over a Docker Swarm, through one manager's Engine API.

Each Baepo instance is a Swarm service of one replica (docs/swarm.md: the reconciler keeps its
per-instance control, so the health gate before routing and the drain before a stop stay what
they are on one engine). `swarm_specs` holds the translation; this module the calls:

    run       create the service, pinned to the node `choose_node` picks (spread: the fewest of
              the same service's instances), with the credentials the nodes pull with; then
              wait until its task runs. A task that fails to start (the image cannot be pulled,
              the entrypoint is missing) or does not start within `start_timeout_s` is removed
              and raised as `StartFailed` with Swarm's words.
    list      services with Baepo's labels, their tasks and the nodes, three calls in all
    stop      add a placement constraint no node meets: Swarm shuts the task down (SIGTERM,
              SIGKILL after the grace period set when it was made, `stop_grace_s`) and keeps
              it, with its container's exit code and output; wait until it has ended
    remove    delete the service (its node removes the container)
    logs      the service's logs (`docker service logs`), gathered by the manager from the node
    usage     the one-shot stats of the task's container, from the engine of the node it runs
              on (Swarm has no stats API): `node_engines` names them by hostname, the
              manager's own is the manager's socket. None from a node with no engine named or
              that does not answer (logged once, until it answers again).
    networks  overlay networks, attachable so that the `Edge` (swarm_edge.py) joins each one:
              through it Baepo's host, the router and the health probes reach task addresses
    events    Swarm (API 1.41) reports no task changes as events: the stream lists again every
              `poll_s` and reports what changed (a start, an exit, a removal)
    images    pull, build, push and the image store are the manager node's own engine's
              (`DockerEngine` on the same socket); the nodes pull at run time, by digest

A lost node is Swarm's to notice (its heartbeats stop: the manager marks it down and shuts its
tasks down); its instances then list as "dead" with the reason, and the reconciler replaces
them as it replaces any instance that died, through its health gate. Swarm never restarts one.
"""

from __future__ import annotations

import builtins
import json
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

from baepo.runtime import networks, swarm_specs
from baepo.runtime.boundary import boundary as _boundary
from baepo.runtime.engine import (
    DEFAULT_CAPABILITIES,
    LABEL_MANAGED,
    LABEL_SERVICE,
    BuildSpec,
    ContainerSpec,
    Credentials,
    EngineEvent,
    Image,
    Instance,
    LineSink,
    LocalImage,
    Network,
    Usage,
)
from baepo.runtime.engine_api import DockerEngine, DockerOutputStream
from baepo.runtime.engine_http import EngineClient, demultiplex, endpoint, logs_query
from baepo.runtime.errors import (
    EngineError,
    EngineUnavailable,
    StartFailed,
)
from baepo.runtime.swarm_edge import Edge
from baepo.runtime.swarm_specs import Node

log = logging.getLogger(__name__)

_WAIT_EVERY_S = 0.25
_OVER = {"exited", "dead"}


class SwarmEngine:
    def __init__(
        self,
        manager_url: str,
        *,
        timeout_s: float = 60,
        start_timeout_s: float = 300,
        stop_grace_s: float = 10,
        capabilities: tuple[str, ...] = DEFAULT_CAPABILITIES,
        edge: Edge | None = None,
        poll_s: float = 1.0,
        node_engines: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url = manager_url
        self._client = EngineClient(manager_url, timeout_s=timeout_s)
        self._local = DockerEngine(manager_url, timeout_s=timeout_s)
        self._timeout_s = timeout_s
        self._start_timeout_s = start_timeout_s
        self._stop_grace_s = stop_grace_s
        self._capabilities = capabilities
        self._edge = edge
        self._poll_s = poll_s
        self._placing = threading.Lock()  # one placement at a time: each sees the last one's
        self._node_urls = dict(node_engines or {})  # node hostname → its engine's address
        self._node_engines: dict[str, DockerEngine] = {}
        self._unread_nodes: set[str] = set()  # those whose missing usage was logged
        self._own_node: str | None = None  # the manager's node id, once asked
        self._nodes_lock = threading.Lock()  # `usage` runs in several threads at once

    def close(self) -> None:
        self._client.close()
        self._local.close()
        for engine in self._node_engines.values():
            engine.close()

    def ping(self) -> None:
        with _boundary("ask the swarm manager"):
            info = self._client.json("GET", "/info")
        swarm = (info or {}).get("Swarm") or {}
        if not swarm.get("ControlAvailable"):
            state = swarm.get("LocalNodeState") or "inactive"
            raise EngineUnavailable(f"the engine at {self.base_url} is no swarm manager ({state})")

    # -- images: the manager node's own engine ------------------------------------------

    def pull(self, ref: str, auth: Credentials | None = None) -> Image:
        return self._local.pull(ref, auth)

    def image_present(self, ref: str) -> bool:
        return self._local.image_present(ref)

    def images(self, labels: Mapping[str, str]) -> builtins.list[LocalImage]:
        return self._local.images(labels)

    def remove_image(self, ref: str) -> None:
        self._local.remove_image(ref)

    def prune_images(self, labels: Mapping[str, str]) -> None:
        self._local.prune_images(labels)

    def build(
        self, spec: BuildSpec, on_line: LineSink, cancel: threading.Event | None = None
    ) -> str:
        return self._local.build(spec, on_line, cancel)

    def push(self, ref: str, auth: Credentials | None, on_line: LineSink) -> str:
        return self._local.push(ref, auth, on_line)

    # -- instances ------------------------------------------------------------------------

    def run(self, spec: ContainerSpec) -> Instance:
        with self._placing:
            node = self._node_for(spec)
            body = swarm_specs.service_body(spec, node, self._capabilities, self._stop_grace_s)
            with _boundary(f"create a service from {spec.image}", other=StartFailed):
                created = self._client.json(
                    "POST",
                    "/services/create",
                    body=body,
                    headers=swarm_specs.credentials_header(spec.pull_auth),
                )
        service_id = str((created or {}).get("ID") or "")
        try:
            return self._until_started(service_id, spec.image)
        except StartFailed:
            # A service whose task never ran is of no use to anyone: leave nothing behind.
            with _boundary(f"remove service {service_id} after a failed start"):
                self._remove_service(service_id)
            raise

    def list(self, labels: Mapping[str, str]) -> builtins.list[Instance]:
        if self._edge is not None:
            self._edge.ensure()  # cheap when it stands; made again after the edge restarted
        wanted = {**labels, LABEL_MANAGED: "true"}
        selector = [f"{key}={value}" for key, value in wanted.items()]
        with _boundary("list services"):
            services = self._client.json(
                "GET", "/services", query={"filters": json.dumps({"label": selector})}
            )
            services = [
                s
                for s in services or []
                if all(
                    ((s.get("Spec") or {}).get("Labels") or {}).get(k) == v
                    for k, v in wanted.items()
                )
            ]
            if not services:
                return []
            tasks = self._tasks([str(s["ID"]) for s in services])
            nodes = self._nodes()
        by_service: dict[str, builtins.list[Mapping[str, Any]]] = {}
        for task in tasks:
            by_service.setdefault(str(task.get("ServiceID") or ""), []).append(task)
        return [
            swarm_specs.instance_of(
                s, swarm_specs.latest_task(by_service.get(str(s["ID"]), [])), nodes
            )
            for s in services
        ]

    def inspect(self, instance_id: str) -> Instance:
        return swarm_specs.instance_of(*self._service_task_nodes(instance_id))

    def stop(self, instance_id: str, timeout_s: float = 10) -> None:
        """Scale to 0 and wait (for `timeout_s` and the engine's timeout more) until the task
        has ended; the grace period is the one the service was made with."""
        if not self.inspect(instance_id).running:
            return
        self._stop_placing(instance_id)
        self._until(lambda: not self.inspect(instance_id).running, timeout_s + self._timeout_s)

    def wait(self, instance_id: str, timeout_s: float) -> int | None:
        if not self._until(lambda: not self.inspect(instance_id).running, timeout_s):
            return None
        return self.inspect(instance_id).exit_code

    def remove(self, instance_id: str) -> None:
        with _boundary(f"remove service {instance_id}"):
            self._remove_service(instance_id)

    def logs(self, instance_id: str, tail: int = 100) -> str:
        with _boundary(f"read the logs of service {instance_id}"):
            raw = self._client.request(
                "GET",
                endpoint("/services/{}/logs", instance_id),
                query=logs_query(tail if tail >= 0 else None),
            )
        return demultiplex(raw).decode("utf-8", errors="replace")

    def output(
        self,
        instance_id: str,
        *,
        since: datetime | None = None,
        tail: int | None = None,
        follow: bool = False,
    ) -> DockerOutputStream:
        query = logs_query(tail, timestamps=True, follow=follow, since=since)
        with _boundary(f"read the output of service {instance_id}"):
            chunks = self._client.chunks(
                "GET",
                endpoint("/services/{}/logs", instance_id),
                query=query,
                idle_timeout_s=None if follow else self._timeout_s,
            )
        stream = DockerOutputStream(chunks, tty=False, since=since)
        if follow:
            self._end_when_stopped(instance_id, stream)
        return stream

    def _end_when_stopped(self, instance_id: str, stream: DockerOutputStream) -> None:
        """Swarm keeps following a service's logs after its task ended (until the service
        goes): a thread ends the follow once the instance has stopped, a look later (its
        last lines are in by then)."""

        def watch() -> None:
            stopped = 0
            while not stream.closed and stopped < 2:
                time.sleep(self._poll_s)
                try:
                    stopped = stopped + 1 if not self.inspect(instance_id).running else 0
                except EngineError:
                    stopped += 1  # removed, or the manager is gone: the follow ends too
            stream.close()

        threading.Thread(target=watch, name="swarm-follow", daemon=True).start()

    def usage(self, instance_id: str) -> Usage | None:
        """From the engine of the node the task runs on (Swarm has no stats API); None where
        that engine is unknown or silent: usage is optional, the instance serves on."""
        service, task, nodes = self._service_task_nodes(instance_id)
        container = swarm_specs.container_id(task)
        node = nodes.get(str((task or {}).get("NodeID") or ""))
        running = swarm_specs.instance_of(service, task, nodes).running
        if node is None or container is None or not running:
            return None
        engine = self._engine_on(node)
        if engine is None:
            self._not_read(node.hostname, "no engine of it is configured (--swarm-node-engine)")
            return None
        try:
            usage = engine.usage(container)
        except EngineError as exc:
            self._not_read(node.hostname, str(exc))
            return None
        with self._nodes_lock:
            self._unread_nodes.discard(node.hostname)
        return usage

    def _engine_on(self, node: Node) -> DockerEngine | None:
        """The engine of `node`, made once: the one `node_engines` names, else the manager's
        own if it is the manager's node, else None."""
        url = self._node_urls.get(node.hostname)
        if url is None:
            return self._local if node.id == self._own_node_id() else None
        with self._nodes_lock:
            if node.hostname not in self._node_engines:
                self._node_engines[node.hostname] = DockerEngine(url, timeout_s=self._timeout_s)
            return self._node_engines[node.hostname]

    def _own_node_id(self) -> str:
        if self._own_node is None:
            with _boundary("ask the swarm manager"):
                info = self._client.json("GET", "/info")
            self._own_node = str(((info or {}).get("Swarm") or {}).get("NodeID") or "")
        return self._own_node

    def _not_read(self, hostname: str, why: str) -> None:
        """Log that `hostname`'s instances show no usage, once until it is read again."""
        with self._nodes_lock:
            if hostname in self._unread_nodes:
                return
            self._unread_nodes.add(hostname)
        log.warning("no usage of the instances on swarm node %s: %s", hostname, why)

    # -- networks -------------------------------------------------------------------------

    def ensure_network(self, name: str, labels: Mapping[str, str]) -> Network:
        """An attachable overlay network (the edge joins it), made if missing."""
        network = self._network(name)
        if network is None:
            networks.create(self._client, name, labels, driver="overlay", attachable=True)
            network = self._network(name)
            if network is None:
                raise EngineError(f"cannot create network {name}: it is gone at once")
        if self._edge is not None:
            self._edge.attach(name)
        return network

    def networks(self, labels: Mapping[str, str]) -> builtins.list[Network]:
        return networks.listed(self._client, labels, driver="overlay")

    def remove_network(self, name: str) -> None:
        """Returns once the manager no longer lists it (it removes it a moment after)."""
        if self._network(name) is None:
            return
        if self._edge is not None:
            self._edge.detach(name)
        networks.remove(self._client, name)
        self._until(lambda: self._network(name) is None, self._timeout_s)

    # -- events ---------------------------------------------------------------------------

    def events(self, labels: Mapping[str, str]) -> PolledEventStream:
        return PolledEventStream(lambda: self.list(labels), self._poll_s)

    # -- calls used more than once --------------------------------------------------------

    def _node_for(self, spec: ContainerSpec) -> str:
        """The node `choose_node` picks for `spec`, from where Baepo's services are pinned
        (read from their specs, not their tasks: a service made a moment ago has no task yet,
        and two starts in a row must not both find its node empty)."""
        with _boundary("list swarm nodes and services"):
            nodes = list(self._nodes().values())
            services = self._client.json(
                "GET",
                "/services",
                query={"filters": json.dumps({"label": [f"{LABEL_MANAGED}=true"]})},
            )
        same: Counter[str] = Counter()
        everything: Counter[str] = Counter()
        service = spec.labels.get(LABEL_SERVICE)
        for attrs in services or []:
            node = swarm_specs.pinned_node(attrs.get("Spec") or {})
            if node is None:
                continue
            everything[node] += 1
            labels = (attrs.get("Spec") or {}).get("Labels") or {}
            if service is not None and labels.get(LABEL_SERVICE) == service:
                same[node] += 1
        try:
            return swarm_specs.choose_node(nodes, same, everything)
        except ValueError as exc:
            raise StartFailed(f"cannot place {spec.image}: {exc}") from exc

    def _stop_placing(self, service_id: str) -> None:
        """Add the `STOPPED` constraint: Swarm shuts the task down (SIGTERM, SIGKILL after
        the grace period) and keeps it, for a new one that never starts."""
        for attempt in range(3):
            try:
                with _boundary(f"stop service {service_id}"):
                    service = self._service(service_id)
                    spec = dict(service.get("Spec") or {})
                    template = dict(spec.get("TaskTemplate") or {})
                    constraints = swarm_specs.constraints_of(spec)
                    template["Placement"] = {"Constraints": [*constraints, swarm_specs.STOPPED]}
                    spec["TaskTemplate"] = template
                    self._client.request(
                        "POST",
                        endpoint("/services/{}/update", service_id),
                        query={"version": (service.get("Version") or {}).get("Index")},
                        body=spec,
                    )
                return
            except EngineError as exc:
                # Swarm refuses an update made against a version someone else moved on.
                if "out of sequence" not in str(exc) or attempt == 2:
                    raise

    def _until_started(self, service_id: str, image: str) -> Instance:
        deadline = time.monotonic() + self._start_timeout_s
        while True:
            instance = self.inspect(service_id)
            # One that started and ended already is no failed start: an exited instance.
            if instance.state == "running" or (
                instance.state == "exited" and instance.started_at is not None
            ):
                return instance
            if instance.state != "created":
                why = instance.error or instance.state
                raise StartFailed(f"cannot start {image}: {why}")
            if time.monotonic() >= deadline:
                why = instance.error or "still being placed, pulled or started"
                raise StartFailed(
                    f"cannot start {image}: not running within {self._start_timeout_s:g} s ({why})"
                )
            time.sleep(_WAIT_EVERY_S)

    def _until(self, done: Callable[[], bool], timeout_s: float) -> bool:
        """Poll `done` until it holds (True) or `timeout_s` passes (False)."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        while not done():
            if time.monotonic() >= deadline:
                return False
            time.sleep(_WAIT_EVERY_S)
        return True

    def _service_task_nodes(
        self, instance_id: str
    ) -> tuple[dict[str, Any], Mapping[str, Any] | None, dict[str, Node]]:
        """The service, its latest task and the nodes (`ContainerNotFound`: no such service)."""
        with _boundary(f"inspect service {instance_id}"):
            service = self._service(instance_id)
            tasks = self._tasks([str(service["ID"])])
            nodes = self._nodes()
        return service, swarm_specs.latest_task(tasks), nodes

    def _service(self, service_id: str) -> dict[str, Any]:
        answer = self._client.json("GET", endpoint("/services/{}", service_id))
        if not isinstance(answer, dict):
            raise EngineError(f"the manager's answer for service {service_id} is no object")
        return answer

    def _tasks(self, service_ids: builtins.list[str]) -> builtins.list[Mapping[str, Any]]:
        found = self._client.json(
            "GET", "/tasks", query={"filters": json.dumps({"service": service_ids})}
        )
        wanted = set(service_ids)
        return [t for t in found or [] if str(t.get("ServiceID") or "") in wanted]

    def _nodes(self) -> dict[str, Node]:
        nodes = [swarm_specs.node_of(attrs) for attrs in self._client.json("GET", "/nodes") or []]
        return {node.id: node for node in nodes}

    def _network(self, name: str) -> Network | None:
        with _boundary(f"list networks named {name}"):
            found = self._client.json(
                "GET", "/networks", query={"filters": json.dumps({"name": [name]})}
            )
        exact = [attrs for attrs in found or [] if attrs.get("Name") == name]
        return networks.network_of(exact[0]) if exact else None

    def _remove_service(self, service_id: str) -> None:
        self._client.request("DELETE", endpoint("/services/{}", service_id))


class PolledEventStream:
    """Events made by listing again every `poll_s` and comparing: an instance seen running
    that was not is a "start", one that ran and no longer does a "die", one gone a
    "destroy". The first listing is taken at once (subscribe, then list: nothing is missed).
    A listing that fails raises `EngineUnavailable`; `close()` from any thread ends it."""

    def __init__(self, list_now: Callable[[], builtins.list[Instance]], poll_s: float) -> None:
        self._list_now = list_now
        self._poll_s = poll_s
        self._closed = threading.Event()
        self._pending: deque[EngineEvent] = deque()
        self._seen = {i.id: i for i in self._listing()}

    def __iter__(self) -> Iterator[EngineEvent]:
        return self

    def __next__(self) -> EngineEvent:
        while not self._pending:
            if self._closed.wait(self._poll_s):
                raise StopIteration
            now = {i.id: i for i in self._listing()}
            self._pending.extend(_changes(self._seen, now))
            self._seen = now
        return self._pending.popleft()

    def close(self) -> None:
        self._closed.set()

    def _listing(self) -> builtins.list[Instance]:
        try:
            return self._list_now()
        except EngineUnavailable:
            raise
        except EngineError as exc:
            raise EngineUnavailable(f"cannot follow the swarm's services: {exc}") from exc


def _changes(before: Mapping[str, Instance], now: Mapping[str, Instance]) -> Iterator[EngineEvent]:
    """What happened between two listings. An instance that started and ended between them
    (a crash within a poll) makes both its events."""
    for instance_id, instance in now.items():
        old = before.get(instance_id)
        was_running = old is not None and old.running
        was_over = old is not None and old.state in _OVER
        if instance.running and not was_running:
            yield EngineEvent("start", instance_id, instance.labels)
        elif instance.state in _OVER and not was_over and instance.started_at is not None:
            if not was_running:
                yield EngineEvent("start", instance_id, instance.labels)
            yield EngineEvent("die", instance_id, instance.labels, instance.exit_code)
    for instance_id, old in before.items():
        if instance_id not in now:
            yield EngineEvent("destroy", instance_id, old.labels)
