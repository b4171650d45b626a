"""The `Engine` interface: run service instances as containers, observe them, stop them.

An implementation speaks to one container engine: `DockerEngine` (the Docker Engine API, which
Podman's compatible socket also serves) or, in the tests, `MemoryEngine` (tests/fakes/engine.py,
a fake for other rooms' unit tests). Both pass the same conformance suite
(tests/runtime/test_engine_conformance.py).

Labels contract
---------------
Baepo finds its containers again by their labels, never by names or by memory, so a restart of
`baepo` adopts what is running instead of orphaning or duplicating it:

    baepo.managed=true          set by the engine on every container it starts; `list` only ever
                                sees containers carrying it, so Baepo never touches anyone else's
    baepo.service=<name>        the service the instance serves          (set by control/)
    baepo.revision=<id>         the revision (image digest + config)     (set by control/)
    baepo.instance=<id>         the instance's own id, stable across restarts of baepo

This room owns the label names (the constants below); the control room owns their values.
Pipelines may add labels of their own under `baepo.`.

Calls are synchronous and may block for seconds (a pull for minutes): async callers run them in
a worker thread (`asyncio.to_thread`). Implementations are safe to share between threads.

Networks
--------
Nothing is published on host ports: an engine's port proxy accepts TCP connections even when
nothing listens in the container (a TCP health check through it passes for a dead app), and its
random host ports collide with the kernel's ephemeral ports under load. An instance joins one
engine network (`ContainerSpec.network`, made with `ensure_network`: a bridge the engine
isolates from its other networks, with outgoing NAT), and the router and the health probes,
which run on the host, reach it at `Instance.address`: its address on that network and its
container port. The container port is kept in the `baepo.port` label.

The engine never restarts a container: a crashed instance stays "exited" with its exit code
and logs until the reconciler replaces and removes it.

Output
------
What an instance writes on stdout and stderr is read two ways: `logs`, the last lines as one
text (for an operation's log), and `output`, lines with the engine's own timestamps (so the
lines of several instances merge in time order), optionally followed as they are written.
The engine keeps a container's output only as long as the container: whoever wants it after
the container is removed copies it first (the control room's log keeper).

Usage
-----
`usage` is what a running instance consumes now: the CPU time it has used since it started
(a counter: a rate needs two readings, which the caller spaces as it likes) and the memory it
holds, reclaimable page cache left out as `docker stats` does. One short call per instance
(the Engine API's one-shot stats), bounded by the engine's timeout.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal, Protocol

from baepo.references import InvalidReference, Reference
from baepo.runtime.errors import PullFailed

LABEL_MANAGED = "baepo.managed"
LABEL_SERVICE = "baepo.service"
LABEL_REVISION = "baepo.revision"
LABEL_INSTANCE = "baepo.instance"
LABEL_PORT = "baepo.port"

Credentials = tuple[str, str]
"""A registry username and password (or token), as `docker login` takes them."""

InstanceState = Literal["created", "running", "paused", "restarting", "removing", "exited", "dead"]

DEFAULT_PIDS_LIMIT = 512

DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "NET_BIND_SERVICE",
)
"""Capabilities added back after dropping ALL: enough for an image whose entrypoint chowns its
data and drops to a user (nginx, postgres-style entrypoints) and binds a port below 1024;
without raw sockets, mknod, chroot or setfcap, which Docker grants by default."""


@dataclass(frozen=True)
class Mount:
    """A host directory (or file) seen inside the container at `target` (a bind mount)."""

    source: str
    target: str
    read_only: bool = False


@dataclass(frozen=True, kw_only=True)
class ContainerSpec:
    """What to run. `cpu` is in vCPUs (0.25, 1, 2), `memory_mb` a hard limit without swap;
    `workdir` is where `command` starts (the image's own when None). `pull_auth` is for an
    engine that fetches the image as it starts it (Swarm: every node pulls the image by itself);
    one that runs only local images ignores it."""

    image: str
    name: str | None = None
    port: int | None = None
    command: Sequence[str] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    cpu: float | None = None
    memory_mb: int | None = None
    pids_limit: int = DEFAULT_PIDS_LIMIT
    network: str | None = None
    mounts: Sequence[Mount] = ()
    workdir: str | None = None
    pull_auth: Credentials | None = None


@dataclass(frozen=True, kw_only=True)
class BuildSpec:
    """An image to build from the directory `context` and tag `tag`.

    `dockerfile` is its path inside the context; `dockerfile_text`, when given, is sent in its
    place (a generated Dockerfile: the context's own file of that name, if any, is not sent).
    `cpu` and `memory_mb` bound the build's RUN steps as `ContainerSpec`'s bound a container;
    `registry_auth` holds credentials per registry host, for FROM images that need a login.
    """

    context: Path
    tag: str
    dockerfile: str = "Dockerfile"
    dockerfile_text: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    build_args: Mapping[str, str] = field(default_factory=dict)
    cpu: float | None = None
    memory_mb: int | None = None
    registry_auth: Mapping[str, Credentials] = field(default_factory=dict)


LineSink = Callable[[str], None]
"""Where a build or a push reports its progress, a line at a time (without its line break)."""


@dataclass(frozen=True)
class Limits:
    """The limits and hardening the engine applied, read back from the container."""

    cpu: float | None
    memory_mb: int | None
    pids_limit: int | None
    no_new_privileges: bool
    cap_drop: tuple[str, ...]
    cap_add: tuple[str, ...]


@dataclass(frozen=True)
class Instance:
    """A container as the engine reports it now.

    `exit_code` is None until the container has exited. `address` is `<ip>:<port>`, where
    the host reaches `port` inside the container on its network; None unless it is running
    (and has a port). `node` is the machine it runs on where an engine spans several (a
    swarm node's hostname); None on a single engine.
    """

    id: str
    name: str
    image: str
    image_id: str
    labels: Mapping[str, str]
    state: InstanceState
    exit_code: int | None
    port: int | None
    address: str | None
    started_at: datetime | None
    finished_at: datetime | None
    oom_killed: bool
    error: str
    limits: Limits
    node: str | None = None

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def url(self) -> str | None:
        """`http://<address>`, where the router sends requests."""
        return None if self.address is None else f"http://{self.address}"


@dataclass(frozen=True)
class Usage:
    """A running instance's consumption, as its engine counts it (cgroup figures)."""

    cpu_ns: int  # CPU time used since it started, every core summed, in nanoseconds
    memory_bytes: int  # resident now, reclaimable page cache excluded
    memory_limit_bytes: int | None  # its limit, None when unlimited (the host's memory)


@dataclass(frozen=True)
class Network:
    """An engine network Baepo made (`ensure_network`)."""

    name: str
    id: str
    labels: Mapping[str, str]


@dataclass(frozen=True)
class Image:
    """A local image. `digest` is the registry's manifest digest (`sha256:…`) for `ref`'s
    repository, to pin a revision with `repo@digest`; None for an image never pulled."""

    ref: str
    id: str
    digest: str | None


@dataclass(frozen=True)
class LocalImage:
    """An image the engine holds, as `Engine.images` lists it. `tags` are its names
    (`repository:tag`; none once it has lost them all: an untagged image); `labels` are its
    own and those it inherits from its FROM image; `created` is when it was built."""

    id: str
    tags: tuple[str, ...]
    labels: Mapping[str, str]
    created: datetime


OutputSource = Literal["stdout", "stderr"]


@dataclass(frozen=True)
class OutputLine:
    """One line an instance wrote, stamped by the engine when it was written (UTC)."""

    at: datetime
    stream: OutputSource
    text: str
    """Without its line break; a line the engine split (past 16 KiB) comes as several."""


class OutputStream(Protocol):
    """A blocking iterator of output lines; `close()` (from any thread) ends the iteration."""

    def __iter__(self) -> Iterator[OutputLine]: ...

    def __next__(self) -> OutputLine: ...

    def close(self) -> None: ...


EventAction = Literal["start", "die", "destroy"]


@dataclass(frozen=True)
class EngineEvent:
    """Something happened to a managed container. A hint to look again, not a source of truth."""

    action: EventAction
    instance_id: str
    labels: Mapping[str, str]
    exit_code: int | None = None


class EventStream(Protocol):
    """A blocking iterator of events; `close()` (from any thread) ends the iteration."""

    def __iter__(self) -> Iterator[EngineEvent]: ...

    def __next__(self) -> EngineEvent: ...

    def close(self) -> None: ...


class Engine(Protocol):
    def ping(self) -> None:
        """Return if the engine answers; raise `EngineUnavailable` otherwise."""
        ...

    def pull(self, ref: str, auth: Credentials | None = None) -> Image:
        """Fetch `ref` (a tag defaults to `latest`) from its registry; return it with its digest.

        `ImageNotFound` and `PullFailed` say `cannot pull <ref>: <why>`, whole for a person."""
        ...

    def image_present(self, ref: str) -> bool:
        """Whether `ref` can be run without pulling."""
        ...

    def images(self, labels: Mapping[str, str]) -> builtins.list[LocalImage]:
        """The local images carrying all of `labels`, tagged or not, newest first (a build's
        intermediate layers are not listed)."""
        ...

    def remove_image(self, ref: str) -> None:
        """Remove the name `ref` (`repository:tag`): the image goes with its last tag, and
        with it the layers no other image uses. A no-op if nothing has that name;
        `ContainerConflict` if `ref` is the last tag of an image a container (running or not)
        uses."""
        ...

    def prune_images(self, labels: Mapping[str, str]) -> None:
        """Remove the untagged images carrying all of `labels` (at least one: the engine
        may hold others' images) that no container uses, with the layers no other image
        uses."""
        ...

    def run(self, spec: ContainerSpec) -> Instance:
        """Create and start a container; never pulls (`ImageNotFound` if the image is absent).

        Applies `spec.labels` plus `baepo.managed=true` (and `baepo.port`), joins
        `spec.network` (the engine's default bridge when None), publishes nothing, and the
        limits: cpu, memory (no swap), pids, no-new-privileges, all capabilities dropped but
        `DEFAULT_CAPABILITIES`, no restart policy. If the engine cannot start it, the
        container is removed and `StartFailed` raised with the engine's own words.
        """
        ...

    def list(self, labels: Mapping[str, str]) -> builtins.list[Instance]:
        """Managed containers carrying all of `labels`, exited ones included."""
        ...

    def inspect(self, instance_id: str) -> Instance: ...

    def stop(self, instance_id: str, timeout_s: float = 10) -> None:
        """SIGTERM, then SIGKILL after `timeout_s`; returns once it has exited. No-op if exited."""
        ...

    def remove(self, instance_id: str) -> None:
        """Remove the container (killing it if still running) and its anonymous volumes."""
        ...

    def logs(self, instance_id: str, tail: int = 100) -> str:
        """The last `tail` lines of its stdout and stderr, interleaved as written."""
        ...

    def output(
        self,
        instance_id: str,
        *,
        since: datetime | None = None,
        tail: int | None = None,
        follow: bool = False,
    ) -> OutputStream:
        """Its stdout and stderr lines, oldest first, with their timestamps: of the lines
        written at or after `since`, the last `tail` (None: all of them).

        Without `follow` the stream ends after the lines there are (each read bounded by the
        engine's timeout). With `follow` it then waits for new lines, as long as none comes,
        until the container stops or `close()` is called. `ContainerNotFound` if there is no
        such container; a stream that breaks later raises `EngineUnavailable`.
        """
        ...

    def usage(self, instance_id: str) -> Usage | None:
        """Its CPU time and memory now; None when it is not running (the engine has no
        figures for it). `ContainerNotFound` if there is no such container."""
        ...

    def ensure_network(self, name: str, labels: Mapping[str, str]) -> Network:
        """The network `name`, made if missing: a bridge isolated from the engine's other
        networks, with outgoing NAT, carrying `labels` plus `baepo.managed=true`."""
        ...

    def networks(self, labels: Mapping[str, str]) -> builtins.list[Network]:
        """Managed networks carrying all of `labels`."""
        ...

    def remove_network(self, name: str) -> None:
        """Remove the network; no-op if it does not exist; `ContainerConflict` while a
        running container is attached (exited ones do not hold it)."""
        ...

    def wait(self, instance_id: str, timeout_s: float) -> int | None:
        """Its exit code once it has exited (at once if it already has), or None if it is
        still running after `timeout_s`. `ContainerNotFound` if there is no such container."""
        ...

    def build(
        self, spec: BuildSpec, on_line: LineSink, cancel: threading.Event | None = None
    ) -> str:
        """Build `spec` with the engine's classic builder (its layer cache kept between
        builds), tag it `spec.tag`, and return the image id.

        The context goes as a tar made while it is sent, without what `.dockerignore`
        excludes (the Dockerfile and `.dockerignore` always go). Every line the builder
        writes goes to `on_line` as it comes. `BuildFailed` with the builder's own message
        when it fails (a Dockerfile error, a RUN step exiting non-zero, an absent FROM
        image); `BuildCancelled` within about a second of `cancel` being set (the engine
        then stops the build).
        """
        ...

    def push(self, ref: str, auth: Credentials | None, on_line: LineSink) -> str:
        """Push the local image `ref` (a tag defaults to `latest`) to its registry; return
        the manifest digest the registry stored (`sha256:…`). Progress goes to `on_line`;
        `PushFailed` with the registry's or engine's words (credentials refused, no such
        image, registry unreachable)."""
        ...

    def events(self, labels: Mapping[str, str]) -> EventStream:
        """Start/die/destroy events of managed containers carrying `labels`, from now on.

        Subscribe first, then `list`: an event that lands in between is then seen twice,
        never missed.
        """
        ...


def image_reference(ref: str) -> Reference:
    """`ref` read with Baepo's one reference grammar (`baepo.references`); `PullFailed` with
    the reason when it is not a reference, before anything is asked of the engine."""
    try:
        return Reference.parse(ref)
    except InvalidReference as exc:
        raise PullFailed(f"cannot pull {ref[:300]!r}: {exc}") from exc
