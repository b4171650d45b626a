"""`DockerEngine`: the `Engine` interface over the Docker Engine API (`engine_http`'s client).

Works against dockerd and against Podman's Docker-compatible socket (`podman system service`;
Podman 4.3, see scripts/podman-engine): it reads only fields both serve (`State`, `HostConfig`,
`NetworkSettings.Ports`, `Config.Labels`) and filters events on our side as well as the engine's.
Where Podman's answers differ, they are read as Docker's:

    network isolation      none between networks unless asked        → "isolate" option

    a taken name           500 "… is already in use", not 409          → ContainerConflict
    a stopped container    still lists its network address            → address None
    CapAdd / CapDrop       relative to Podman's default set, never ALL → its libpod inspect's
                                                                         BoundingCaps, as
                                                                         "drop ALL, add these"
    events                 filtered by libpod's names (died, remove);  → both names asked for;
                           "remove" for Docker's "destroy"               "remove" read as destroy

Podman applies its containers.conf `default_ulimits` only when a container asks for none: an
explicit `ulimits=` must then name every limit the host's defaults break (nofile and nproc here).

Building a `DockerEngine` never touches the socket (the client learns the API version on its
first call): `baepo up` starts while the engine is still down, and its loops report
`EngineUnavailable` until it answers. Every call is bounded by `timeout_s` (a stop by its stop
timeout more; a pull's and an event stream's answers by what arrives: see `pull`, `events`).
What the client raises is translated in `boundary.py`, and nowhere else. Builds and pushes
(`build`, `push`) are in `builds.py`; listing and removing images (`images`, `remove_image`,
`prune_images`) in `images.py`.

The requests are the ones the docker SDK (docker-py 7.1) made for the same calls, down to the
container create's body (`containers.py`), so both engines read them as they always have.
"""

from __future__ import annotations

import builtins
import codecs
import functools
import json
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from baepo.runtime import builds, distribution, networks
from baepo.runtime import images as local_images
from baepo.runtime.boundary import boundary as _boundary
from baepo.runtime.containers import create_body
from baepo.runtime.engine import (
    DEFAULT_CAPABILITIES,
    LABEL_MANAGED,
    LABEL_PORT,
    BuildSpec,
    ContainerSpec,
    Credentials,
    EngineEvent,
    Image,
    Instance,
    InstanceState,
    Limits,
    LineSink,
    LocalImage,
    Network,
    OutputLine,
    OutputSource,
    Usage,
    image_reference,
)
from baepo.runtime.engine_http import (
    ChunkStream,
    EngineClient,
    FrameReader,
    MessageStream,
    TransportError,
    demultiplex,
    endpoint,
    logs_query,
    registry_auth,
    timestamp,
)
from baepo.runtime.errors import (
    ContainerNotFound,
    EngineError,
    EngineUnavailable,
    ImageNotFound,
    PullFailed,
    StartFailed,
)
from baepo.runtime.usage import usage_of

log = logging.getLogger(__name__)
T = TypeVar("T")

_EVENTS = ("start", "die", "destroy")
_STATES = {"created", "running", "paused", "restarting", "removing", "exited", "dead"}
# libpod states Podman's compatible API can let through, in Docker's words.
_PODMAN_STATES = {
    "configured": "created",
    "initialized": "created",
    "stopping": "running",
    "stopped": "exited",
}
# Podman filters events by libpod's names ("died", "remove"), and reports "remove" as such.
_PODMAN_EVENTS = {"died": "die", "remove": "destroy"}
# Attributes engines put next to the labels in an event's Actor.
_EVENT_ATTRIBUTES = {
    "name",
    "image",
    "exitCode",
    "signal",
    "execDuration",
    "containerExitCode",  # Podman
    "podId",  # Podman
}


class DockerEngine:
    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 60,
        capabilities: tuple[str, ...] = DEFAULT_CAPABILITIES,
        ulimits: Mapping[str, tuple[int, int]] | None = None,
    ) -> None:
        self.base_url = base_url
        self._timeout_s = timeout_s
        self._capabilities = capabilities
        self._ulimits = dict(ulimits or {})
        self._client = EngineClient(base_url, timeout_s=timeout_s)
        self._podman: bool | None = None  # learnt from the engine's version on first need

    def close(self) -> None:
        self._client.close()

    # -- images ---------------------------------------------------------------------------

    def ping(self) -> None:
        with _boundary("ping the engine"):
            self._client.request("GET", "/_ping")

    def pull(self, ref: str, auth: Credentials | None = None) -> Image:
        """Pull exactly the manifest the registry answers for the tag, by its digest.

        The digest comes from the registry (`distribution.resolve`), never from the engine's
        `RepoDigests` (ambiguous on Podman); the tag is then set on what was pulled. Only a
        registry that cannot be asked directly is pulled by tag, and the digest taken from
        the engine's own report of the pull.
        """
        reference = image_reference(ref)
        digest = reference.digest
        if digest is None:
            try:
                digest = distribution.resolve(ref, auth)
            except distribution.Unreachable as exc:
                log.info("pulling %s by tag: %s", ref, exc)
        # An empty config means anonymous: never whatever credentials an ambient
        # ~/.docker/config.json holds for that registry.
        credentials = {} if auth is None else {"username": auth[0], "password": auth[1]}
        reported: set[str] = set()
        with _boundary(f"pull {ref}", not_found=_missing_on_pull, other=PullFailed):
            # Each read waits at most timeout_s: engines report a pull's progress as it goes.
            with self._client.stream(
                "POST",
                "/images/create",
                query={
                    "tag": digest or reference.tag or "latest",
                    "fromImage": reference.repository,
                },
                headers={"X-Registry-Auth": registry_auth(credentials)},
                idle_timeout_s=self._timeout_s,
            ) as stream:
                for message in stream:
                    # Registry errors arrive inside a 200 stream, not as an HTTP status.
                    if isinstance(message, dict) and message.get("error"):
                        raise _pull_error(ref, str(message["error"]))
                    status = str(message.get("status") or "") if isinstance(message, dict) else ""
                    if status.startswith("Digest: "):  # dockerd: the registry's answer
                        reported.add(status.removeprefix("Digest: ").strip())
            pulled = f"{reference.repository}@{digest}" if digest else reference.with_default_tag()
            attrs = self._inspect_image(pulled)
            if digest and not reference.digest:
                self._client.request(
                    "POST",
                    endpoint("/images/{}/tag", str(attrs["Id"])),
                    query={
                        "tag": reference.tag or "latest",
                        "repo": reference.repository,
                        "force": 0,
                    },
                )
        if digest is None and len(reported) == 1:
            digest = reported.pop()
        return _image(ref, attrs, digest)

    def build(
        self, spec: BuildSpec, on_line: LineSink, cancel: threading.Event | None = None
    ) -> str:
        return builds.build(self._client, spec, on_line, cancel)

    def push(self, ref: str, auth: Credentials | None, on_line: LineSink) -> str:
        return builds.push(self._client, ref, auth, on_line, idle_timeout_s=self._timeout_s)

    def image_present(self, ref: str) -> bool:
        try:
            with _boundary(f"inspect image {ref}", not_found=ImageNotFound):
                self._inspect_image(ref)
        except ImageNotFound:
            return False
        return True

    def images(self, labels: Mapping[str, str]) -> builtins.list[LocalImage]:
        return local_images.listed(self._client, labels)

    def remove_image(self, ref: str) -> None:
        local_images.remove(self._client, ref)

    def prune_images(self, labels: Mapping[str, str]) -> None:
        local_images.prune(self._client, labels)

    # -- containers -----------------------------------------------------------------------

    def run(self, spec: ContainerSpec) -> Instance:
        what = f"create a container from {spec.image}"
        with _boundary(what, not_found=_missing_on_create, other=StartFailed):
            created = self._client.json(
                "POST",
                "/containers/create",
                query={"name": spec.name},
                body=create_body(spec, self._capabilities, self._ulimits),
            )
            container_id = str(created["Id"])
        try:
            # A 404 here is about something the container refers to (a network), not itself.
            with _boundary(f"start {spec.image}", not_found=StartFailed, other=StartFailed):
                self._client.request("POST", endpoint("/containers/{}/start", container_id))
        except StartFailed:
            # A container that never started is of no use to anyone: leave nothing behind.
            with _boundary(f"remove {container_id} after a failed start"):
                self._remove_container(container_id)
            raise
        return self.inspect(container_id)

    def list(self, labels: Mapping[str, str]) -> builtins.list[Instance]:
        wanted = {**labels, LABEL_MANAGED: "true"}
        selector = [f"{key}={value}" for key, value in wanted.items()]
        query: dict[str, str | int | bool | None] = {
            "limit": -1,
            "all": 1,
            "size": 0,
            "trunc_cmd": 0,
            "filters": _filters({"label": selector}),
        }

        def summaries_now() -> Any:
            with _boundary("list containers"):
                return self._client.json("GET", "/containers/json", query=query)

        summaries = _past_exits(summaries_now)
        instances = []
        for summary in summaries or []:
            try:
                instance = _past_exits(functools.partial(self.inspect, str(summary["Id"])))
            except ContainerNotFound:  # removed between the list and the inspect
                continue
            # Engines differ in how strictly they apply label filters; check again here.
            if all(instance.labels.get(k) == v for k, v in wanted.items()):
                instances.append(instance)
        return instances

    def inspect(self, instance_id: str) -> Instance:
        with _boundary(f"inspect container {instance_id}"):
            attrs = self._inspect_container(instance_id)
            capabilities = self._podman_capabilities(instance_id) if self._is_podman() else None
        return _instance(attrs, capabilities)

    def stop(self, instance_id: str, timeout_s: float = 10) -> None:
        seconds = max(0, math.ceil(timeout_s))
        with _boundary(f"stop container {instance_id}"):
            # The engine answers once the container has exited: up to `seconds` after SIGTERM.
            self._client.request(
                "POST",
                endpoint("/containers/{}/stop", instance_id),
                query={"t": seconds},
                timeout_s=self._timeout_s + seconds,
            )

    def wait(self, instance_id: str, timeout_s: float) -> int | None:
        """The engine's wait, bounded by `timeout_s` (read timeout: then inspected once more,
        for an exit at that very moment)."""
        what = f"wait for container {instance_id}"
        try:
            with _boundary(what):
                answer = _object(
                    json.loads(
                        self._client.request(
                            "POST",
                            endpoint("/containers/{}/wait", instance_id),
                            query={"condition": "not-running"},
                            timeout_s=max(0.001, timeout_s),
                        )
                    )
                )
        except EngineUnavailable as exc:
            if not isinstance(exc.__cause__, TransportError) or not isinstance(
                exc.__cause__.__cause__, TimeoutError
            ):
                raise
            return self.inspect(instance_id).exit_code
        return int(answer.get("StatusCode") or 0)

    def remove(self, instance_id: str) -> None:
        with _boundary(f"remove container {instance_id}"):
            self._remove_container(instance_id)

    def logs(self, instance_id: str, tail: int = 100) -> str:
        with _boundary(f"read the logs of container {instance_id}"):
            raw = self._client.request(
                "GET",
                endpoint("/containers/{}/logs", instance_id),
                query=logs_query(tail if tail >= 0 else None),
            )
            # Without a TTY, stdout and stderr come framed (an 8-byte header each write).
            tty = bool((self._inspect_container(instance_id).get("Config") or {}).get("Tty"))
        return (raw if tty else demultiplex(raw)).decode("utf-8", errors="replace")

    def output(
        self,
        instance_id: str,
        *,
        since: datetime | None = None,
        tail: int | None = None,
        follow: bool = False,
    ) -> DockerOutputStream:
        """A follow waits for lines with no read timeout (until the container stops or
        `close()`); otherwise every read is bounded by timeout_s."""
        query = logs_query(tail, timestamps=True, follow=follow, since=since)
        what = f"read the output of container {instance_id}"
        with _boundary(what):
            tty = bool((self._inspect_container(instance_id).get("Config") or {}).get("Tty"))
            chunks = self._client.chunks(
                "GET",
                endpoint("/containers/{}/logs", instance_id),
                query=query,
                idle_timeout_s=None if follow else self._timeout_s,
            )
        return DockerOutputStream(chunks, tty=tty, since=since)

    def usage(self, instance_id: str) -> Usage | None:
        def read() -> bytes:
            with _boundary(f"read the usage of container {instance_id}"):
                path = endpoint("/containers/{}/stats", instance_id)
                return self._client.request("GET", path, query={"stream": False, "one-shot": True})

        return usage_of(_past_exits(read))

    # -- networks -------------------------------------------------------------------------

    def ensure_network(self, name: str, labels: Mapping[str, str]) -> Network:
        try:
            with _boundary(f"inspect network {name}", not_found=_no_network):
                return networks.network_of(self._inspect_network(name))
        except _NoNetwork:
            pass
        with _boundary(f"create network {name}"):
            options = {"isolate": "true"} if self._is_podman() else {}
        networks.create(self._client, name, labels, driver="bridge", options=options)
        with _boundary(f"inspect network {name}"):
            return networks.network_of(self._inspect_network(name))

    def networks(self, labels: Mapping[str, str]) -> builtins.list[Network]:
        return networks.listed(self._client, labels)

    def remove_network(self, name: str) -> None:
        networks.remove(self._client, name)

    # -- events ---------------------------------------------------------------------------

    def events(self, labels: Mapping[str, str]) -> DockerEventStream:
        """The subscription is answered within timeout_s; then the stream waits for events
        for as long as none happens (no read timeout), until `close()`."""
        wanted = {**labels, LABEL_MANAGED: "true"}
        filters = {
            "type": ["container"],
            "event": [*_EVENTS, *_PODMAN_EVENTS],  # dockerd ignores the names it does not know
            "label": [f"{key}={value}" for key, value in wanted.items()],
        }
        with _boundary("subscribe to engine events"):
            stream = self._client.stream(
                "GET", "/events", query={"filters": _filters(filters)}, idle_timeout_s=None
            )
        return DockerEventStream(stream, wanted)

    # -- Podman ---------------------------------------------------------------------------

    def _is_podman(self) -> bool:
        if self._podman is None:
            components = self._client.version().get("Components") or []
            self._podman = any(
                "podman" in str(c.get("Name", "")).lower()
                for c in components
                if isinstance(c, dict)
            )
        return self._podman

    def _podman_capabilities(self, instance_id: str) -> tuple[str, ...]:
        """The container's bounding capability set, from Podman's own API.

        Podman's Docker-compatible inspect never says `CapDrop: ["ALL"]`: it reports CapAdd and
        CapDrop relative to its configured default set (containers.conf), so "drop ALL, add
        CHOWN" reads back as "drop the other defaults". Its libpod inspect holds the set itself.
        """
        attrs = self._client.json("GET", endpoint("/libpod/containers/{}/json", instance_id))
        return tuple(_capability(c) for c in (attrs or {}).get("BoundingCaps") or [])

    # -- calls used more than once --------------------------------------------------------

    def _inspect_container(self, instance_id: str) -> dict[str, Any]:
        return _object(self._client.json("GET", endpoint("/containers/{}/json", instance_id)))

    def _inspect_image(self, ref: str) -> dict[str, Any]:
        return _object(self._client.json("GET", endpoint("/images/{}/json", ref)))

    def _inspect_network(self, name: str) -> dict[str, Any]:
        return _object(self._client.json("GET", endpoint("/networks/{}", name)))

    def _remove_container(self, instance_id: str) -> None:
        self._client.request(
            "DELETE",
            endpoint("/containers/{}", instance_id),
            query={"v": True, "link": False, "force": True},
        )


class DockerEventStream:
    """Engine events as `EngineEvent`s; `close()` from another thread ends the iteration."""

    def __init__(self, stream: MessageStream, labels: Mapping[str, str]) -> None:
        self._stream = stream
        self._labels = dict(labels)

    def __iter__(self) -> Iterator[EngineEvent]:
        return self

    def __next__(self) -> EngineEvent:
        while True:
            try:
                raw = next(self._stream)  # ends (StopIteration) once closed
            except TransportError as exc:
                raise EngineUnavailable(f"engine event stream broke: {exc}") from exc
            event = _event(raw)
            if event is not None and all(event.labels.get(k) == v for k, v in self._labels.items()):
                return event

    def close(self) -> None:
        self._stream.close()


class DockerOutputStream:
    """A container's output as `OutputLine`s: the frames of its log stream, or a TTY's one
    raw stream (all stdout), each line after its RFC 3339 timestamp. `close()` from another
    thread ends the iteration."""

    def __init__(self, chunks: ChunkStream, *, tty: bool, since: datetime | None) -> None:
        self._chunks = chunks
        self._frames = None if tty else FrameReader()
        self._tty_text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._tty_partial = ""  # a TTY's line cut across chunks
        self._lines: deque[OutputLine] = deque()
        self._last = since or datetime.now(UTC)

    def __iter__(self) -> Iterator[OutputLine]:
        return self

    def __next__(self) -> OutputLine:
        while not self._lines:
            try:
                chunk = next(self._chunks)  # ends (StopIteration) at the end or once closed
            except TransportError as exc:
                raise EngineUnavailable(f"a container's output broke off: {exc}") from exc
            except StopIteration:
                rest, self._tty_partial = self._tty_partial, ""
                if not rest or self._chunks.closed:
                    raise
                self._add("stdout", rest)
                break
            if self._frames is None:
                text = self._tty_partial + self._tty_text.decode(chunk)
                whole, newline, self._tty_partial = text.rpartition("\n")
                if newline:
                    for line in whole.split("\n"):
                        self._add("stdout", line)
                continue
            try:
                frames = self._frames.feed(chunk)
            except TransportError as exc:
                self._chunks.close()
                raise EngineUnavailable(f"a container's output is unreadable: {exc}") from exc
            for number, payload in frames:
                # One frame is one line (or a piece of a long one), stamped: decoded alone.
                text = payload.decode("utf-8", errors="replace").removesuffix("\n")
                if payload:
                    for line in text.split("\n"):
                        self._add("stderr" if number == 2 else "stdout", line)
        return self._lines.popleft()

    @property
    def closed(self) -> bool:
        """Whether `close()` was called."""
        return self._chunks.closed

    def close(self) -> None:
        self._chunks.close()

    def _add(self, source: OutputSource, line: str) -> None:
        stamp, _, text = line.partition(" ")
        at = timestamp(stamp)
        if at is None:  # a line the engine did not stamp: the one before's time
            at, text = self._last, line
        self._last = at
        self._lines.append(OutputLine(at, source, text))


# -- translation: the engine's answers and errors in, baepo's out -------------------------


def _past_exits(call: Callable[[], T]) -> T:
    """`call()`, once more if the engine tripped over a container exiting at that moment:
    Podman 4.3 answers 500 "read /proc/<pid>/cgroup: no such process" when a listed or
    inspected container's process ends under it."""
    try:
        return call()
    except EngineError as exc:
        if "no such process" not in str(exc):
            raise
        time.sleep(0.1)
        return call()


def _filters(filters: Mapping[str, builtins.list[str]]) -> str:
    """The `filters` query parameter: JSON of name → values."""
    return json.dumps(dict(filters))


def _object(answer: object) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise TransportError(f"the engine answered {str(answer)[:200]!r}, not an object")
    return answer


class _NoNetwork(EngineError):
    """A network that does not exist (never leaves this module)."""


def _no_network(message: str) -> EngineError:
    return _NoNetwork(message)


def _missing_on_create(message: str) -> EngineError:
    # Creating answers 404 for a missing image and for a missing network alike.
    _, _, explanation = message.partition(": ")
    if "network" in explanation.lower():
        return StartFailed(message)
    return ImageNotFound(message)


def _missing_on_pull(message: str) -> EngineError:
    # Docker answers 404 "pull access denied … repository does not exist or may require
    # 'docker login'" when a registry refuses anonymous access: a credentials problem first.
    lowered = message.lower()
    if "denied" in lowered or "unauthorized" in lowered or "authentication required" in lowered:
        return PullFailed(message)
    return ImageNotFound(message)


def _pull_error(ref: str, message: str) -> EngineError:
    lowered = message.lower()
    if "denied" in lowered or "unauthorized" in lowered or "authentication required" in lowered:
        return PullFailed(f"cannot pull {ref}: {message}")
    if "not found" in lowered or "manifest unknown" in lowered or "name unknown" in lowered:
        return ImageNotFound(f"cannot pull {ref}: {message}")
    return PullFailed(f"cannot pull {ref}: {message}")


def _image(ref: str, attrs: Mapping[str, Any], digest: str | None) -> Image:
    """The pulled image; without a digest from the registry, the one of its `RepoDigests`
    for this repository if there is exactly one (Podman can list several: then none)."""
    if digest is None:
        reference = image_reference(ref)
        candidates = {
            candidate
            for repository, _, candidate in (
                str(d).partition("@") for d in attrs.get("RepoDigests") or []
            )
            if reference.same_repository(repository)
        }
        digest = candidates.pop() if len(candidates) == 1 else None
    return Image(ref=ref, id=str(attrs["Id"]), digest=digest)


def _instance(
    attrs: Mapping[str, Any], bounding_capabilities: tuple[str, ...] | None = None
) -> Instance:
    """An `Instance` from an engine's inspect; `bounding_capabilities` replaces the CapAdd and
    CapDrop it reports (Podman's are relative to its defaults: see `_podman_capabilities`)."""
    state = attrs.get("State") or {}
    config = attrs.get("Config") or {}
    host = attrs.get("HostConfig") or {}
    status = str(state.get("Status") or "created").lower()
    status = _PODMAN_STATES.get(status, status)
    exited = status in ("exited", "dead")
    labels = dict(config.get("Labels") or {})
    port = _port(labels, host)
    address = None
    if status in ("running", "paused") and port is not None:
        # Podman keeps reporting the address of a stopped container; Docker does not.
        ip = _ip_address(attrs.get("NetworkSettings") or {}, str(host.get("NetworkMode") or ""))
        address = f"{ip}:{port}" if ip else None
    limits = _limits(host)
    if bounding_capabilities is not None:
        limits = replace(limits, cap_drop=("ALL",), cap_add=bounding_capabilities)
    return Instance(
        id=str(attrs["Id"]),
        name=str(attrs.get("Name") or "").lstrip("/"),
        image=str(config.get("Image") or ""),
        image_id=str(attrs.get("Image") or ""),
        labels=labels,
        state=cast(InstanceState, status if status in _STATES else "dead"),
        exit_code=int(state.get("ExitCode") or 0) if exited else None,
        port=port,
        address=address,
        started_at=timestamp(state.get("StartedAt")),
        finished_at=timestamp(state.get("FinishedAt")),
        oom_killed=bool(state.get("OOMKilled")),
        error=str(state.get("Error") or ""),
        limits=limits,
    )


def _port(labels: Mapping[str, str], host: Mapping[str, Any]) -> int | None:
    """The container port: Baepo's label, or (a container that published it) its binding."""
    label = labels.get(LABEL_PORT, "")
    if label.isdigit():
        return int(label)
    for key in host.get("PortBindings") or {}:
        number, _, proto = str(key).partition("/")
        if proto in ("", "tcp") and number.isdigit():
            return int(number)
    return None


def _ip_address(settings: Mapping[str, Any], mode: str) -> str | None:
    """The container's IPv4 address on its network (the one it was created on, if named)."""
    networks: Mapping[str, Any] = settings.get("Networks") or {}
    ordered = [networks[mode]] if mode in networks else []
    ordered += [n for name, n in networks.items() if name != mode]
    for network in ordered:
        ip = str((network or {}).get("IPAddress") or "")
        if ip:
            return ip
    return str(settings.get("IPAddress") or "") or None


def _limits(host: Mapping[str, Any]) -> Limits:
    nano_cpus = int(host.get("NanoCpus") or 0)
    memory = int(host.get("Memory") or 0)
    pids = int(host.get("PidsLimit") or 0)
    security = [str(option) for option in host.get("SecurityOpt") or []]
    return Limits(
        cpu=nano_cpus / 1e9 if nano_cpus else None,
        memory_mb=memory // (1024 * 1024) if memory else None,
        pids_limit=pids if pids > 0 else None,
        no_new_privileges=any(o.startswith("no-new-privileges") for o in security)
        and not any(o in ("no-new-privileges=false", "no-new-privileges:false") for o in security),
        cap_drop=tuple(_capability(c) for c in host.get("CapDrop") or []),
        cap_add=tuple(_capability(c) for c in host.get("CapAdd") or []),
    )


def _capability(name: str) -> str:
    # Podman reports "CAP_CHOWN" where Docker reports "CHOWN".
    name = str(name).upper()
    return name.removeprefix("CAP_")


def _event(raw: Any) -> EngineEvent | None:
    if not isinstance(raw, dict) or raw.get("Type", "container") != "container":
        return None
    action = str(raw.get("Action") or raw.get("status") or "")
    action = _PODMAN_EVENTS.get(action, action)
    if action not in _EVENTS:
        return None
    actor = raw.get("Actor") or {}
    attributes = {str(k): str(v) for k, v in (actor.get("Attributes") or {}).items()}
    instance_id = str(actor.get("ID") or raw.get("id") or "")
    exit_code = attributes.get("exitCode")
    labels = {k: v for k, v in attributes.items() if k not in _EVENT_ATTRIBUTES}
    return EngineEvent(
        action=cast(Any, action),
        instance_id=instance_id,
        labels=labels,
        exit_code=int(exit_code) if exit_code and exit_code.lstrip("-").isdigit() else None,
    )
