"""`MemoryEngine`: an in-process `Engine` for the unit tests of other rooms (the reconciler).

It lives with the tests, not in the package: nothing Baepo ships may start a fake engine.

It behaves like `DockerEngine` for everything the interface promises: labels and the managed
label, exited instances kept with their exit code and logs, name conflicts, the errors. Images
are `FakeImage`s: one that has a `respond` function really serves HTTP on its instance's
own 127.0.0.1 port (a thread per instance; its `address` stands for an address on its
network), so health checks and the router can be tested against it; one without listens
nowhere (its port is reserved but refuses connections). Networks are names with labels: a
container may only join one that exists, and a network is only removed once no container
(running or not) is attached.

Test helpers: `publish` (into the fake registry, for `pull`), `load` (present locally, like
`docker load`), `write` (a running instance prints a line), `crash` (a running instance
exits), `set_available` (the engine goes away), `require_login` (the fake registry of a host
wants credentials for pushes). A `FakeImage` with a `program` decides from each container's
spec (its command, env, mounts) what the container prints and how it exits: a pipeline step.

Builds (`build`) read the context as the real engine receives it (the same tar, .dockerignore
applied) and walk the Dockerfile: each instruction is a step with a layer cache ("Using
cache" when the step and, for COPY/ADD, the context are the same as before); an unknown
instruction, an absent FROM image, or `RUN exit N` (N > 0) fails the build with the builder's
words; `RUN sleep N` waits up to N s, or until cancelled (in real time, as `wait` does: the
clock only stamps). The image built behaves as its FROM image, carries the spec's labels over
the FROM image's, and keeps the time it was first built (a build that is all cache makes the
same image). `images`, `remove_image` and `prune_images` see an image's names as canonical
references (`docker.io/…` for a name without a registry). `push` puts a local image into
the fake registry under the pushed reference, with a digest that depends on the image only
(the same image pushed twice has the same digest).

Output lines are stamped with the clock's time when written; a follow of `output` wakes on
each new line and ends when the instance stops or is removed.
`baepo_test_images()` mirrors the images `scripts/test-images` builds for the real engine.
"""

from __future__ import annotations

import builtins
import hashlib
import io
import posixpath
import queue
import re
import shlex
import socket
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from baepo.clock import Clock, SystemClock
from baepo.runtime import (
    DEFAULT_CAPABILITIES,
    LABEL_MANAGED,
    LABEL_PORT,
    BuildCancelled,
    BuildFailed,
    BuildSpec,
    ContainerConflict,
    ContainerNotFound,
    ContainerSpec,
    Credentials,
    EngineEvent,
    EngineUnavailable,
    EventAction,
    Image,
    ImageNotFound,
    Instance,
    InstanceState,
    Limits,
    LineSink,
    LocalImage,
    Network,
    OutputLine,
    OutputSource,
    PullFailed,
    PushFailed,
    StartFailed,
    Usage,
    image_reference,
)
from baepo.runtime.contexts import context_tar

Responder = Callable[[str, Mapping[str, str]], tuple[int, str]]
"""(request path, the instance's env) → (HTTP status, text body)."""

Program = Callable[[ContainerSpec], tuple[Sequence[str], int | None]]
"""A container's spec → the lines it prints and its exit code (None: it keeps running)."""

_INSTRUCTIONS = {
    "FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
    "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL", "MAINTAINER",
}  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class FakeImage:
    ref: str
    logs: Sequence[str] = ()
    """Lines the instance prints when it starts."""
    exit_code: int | None = None
    """Exit at once with this code after printing `logs` (a crash); None: keep running."""
    respond: Responder | None = None
    """Serve HTTP with this on the published port; None: listen nowhere."""
    handles_sigterm: bool = True
    """False: `stop` ends it with SIGKILL, exit code 137, as for a PID 1 without a handler."""
    stop_logs: Sequence[str] = ()
    """Lines it prints when it handles SIGTERM."""
    credentials: Credentials | None = None
    """What `pull` must be given, if the fake registry requires a login."""
    program: Program | None = None
    """Decides, from each container's spec, what it prints and how it exits (in place of
    `logs` and `exit_code`)."""
    id: str = ""
    digest: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    created: datetime = datetime(2026, 1, 1, tzinfo=UTC)

    def __post_init__(self) -> None:
        if not self.id:
            object.__setattr__(self, "id", _sha256(f"image {self.ref}"))
        if not self.digest:
            object.__setattr__(self, "digest", _sha256(f"manifest {self.ref}"))


@dataclass(eq=False)
class _Container:
    id: str
    name: str
    spec: ContainerSpec
    image: FakeImage
    labels: dict[str, str]
    state: InstanceState = "created"
    exit_code: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    lines: list[OutputLine] = field(default_factory=list)
    removed: bool = False
    host_port: int | None = None
    cpu_ns: int = 0
    memory_bytes: int = 4 << 20
    error: str = ""
    server: ThreadingHTTPServer | None = None
    reserved: socket.socket | None = None


class MemoryEngine:
    def __init__(self, clock: Clock | None = None, images: Iterable[FakeImage] = ()) -> None:
        self._clock = clock or SystemClock()
        self._registry: dict[str, FakeImage] = {}
        self._local: dict[str, FakeImage] = {}
        self._containers: dict[str, _Container] = {}
        self._networks: dict[str, Network] = {}
        self._subscribers: list[MemoryEventStream] = []
        self._available = True
        self._logins: dict[str, Credentials] = {}
        self._layers: set[str] = set()  # the build cache: a key per step built
        self.builds: list[BuildSpec] = []
        """Every build asked for, in order (for tests' assertions)."""
        self._lock = threading.RLock()
        self._written = threading.Condition(self._lock)  # a line written, an exit, a removal
        for image in images:
            self.load(image)

    # -- test helpers ---------------------------------------------------------------------

    def require_login(self, host: str, credentials: Credentials) -> None:
        """The fake registry at `host` takes pushes only with `credentials` (and what was
        pushed there is pulled with them)."""
        with self._lock:
            self._logins[host] = credentials

    def publish(self, image: FakeImage) -> None:
        """Put `image` in the fake registry, where `pull` finds it by tag or by digest."""
        with self._lock:
            for key in _keys(image):
                self._registry[key] = image

    def load(self, image: FakeImage) -> None:
        """Make `image` present locally, as `docker load` or a local build would."""
        with self._lock:
            for key in _keys(image):
                self._local[key] = image

    def write(self, instance_id: str, text: str, stream: OutputSource = "stdout") -> None:
        """A running instance prints a line."""
        with self._lock:
            self._print(self._get(instance_id), [text], stream)

    def crash(self, instance_id: str, exit_code: int = 1, log: str | None = None) -> None:
        """A running instance exits on its own with `exit_code`, printing `log` first."""
        with self._lock:
            container = self._get(instance_id)
            if log is not None:
                self._print(container, [log])
            if container.state == "running":
                self._exit(container, exit_code)

    def lose(self, instance_id: str, reason: str) -> None:
        """A running instance is lost with its machine (a swarm node gone down): dead, no
        exit code, the engine's `reason`."""
        with self._lock:
            container = self._get(instance_id)
            if container.state == "running":
                self._exit(container, None)
                container.state, container.error = "dead", reason

    def consume(self, instance_id: str, cpu_ns: int = 0, memory_bytes: int | None = None) -> None:
        """A running instance uses `cpu_ns` more CPU time, and holds `memory_bytes` now."""
        with self._lock:
            container = self._get(instance_id)
            container.cpu_ns += cpu_ns
            if memory_bytes is not None:
                container.memory_bytes = memory_bytes

    def set_available(self, available: bool) -> None:
        """While False, every call raises `EngineUnavailable`, as with a stopped dockerd."""
        with self._lock:
            self._available = available

    def close(self) -> None:
        """Stop every instance's HTTP server and release its port."""
        with self._lock:
            for container in self._containers.values():
                _release(container)
            for stream in self._subscribers:
                stream.close()
            for container in self._containers.values():
                container.removed = True
            self._written.notify_all()

    # -- the Engine interface -------------------------------------------------------------

    def ping(self) -> None:
        self._check()

    def pull(self, ref: str, auth: Credentials | None = None) -> Image:
        with self._lock:
            self._check()
            image = self._registry.get(_key(ref))
            if image is None:
                raise ImageNotFound(f"cannot pull {ref}: manifest unknown")
            if image.credentials is not None and auth != image.credentials:
                raise PullFailed(f"cannot pull {ref}: unauthorized: authentication required")
            self._local[_key(ref)] = image
            for key in _keys(image):
                self._local.setdefault(key, image)
            return Image(ref=ref, id=image.id, digest=image.digest)

    def image_present(self, ref: str) -> bool:
        with self._lock:
            self._check()
            return _key(ref) in self._local

    def images(self, labels: Mapping[str, str]) -> builtins.list[LocalImage]:
        with self._lock:
            self._check()
            by_id = {image.id: image for image in self._local.values()}
            found = [
                LocalImage(image.id, self._tags(image.id), dict(image.labels), image.created)
                for image in by_id.values()
                if all(image.labels.get(k) == v for k, v in labels.items())
            ]
        return sorted(found, key=lambda image: (image.created, image.id), reverse=True)

    def remove_image(self, ref: str) -> None:
        with self._lock:
            self._check()
            image = self._local.get(_key(ref))
            if image is None:
                return
            if self._tags(image.id) == (_key(ref),) and self._used(image.id):
                raise ContainerConflict(f"cannot remove image {ref}: a container uses it")
            del self._local[_key(ref)]
            if not self._tags(image.id):
                self._forget(image.id)

    def prune_images(self, labels: Mapping[str, str]) -> None:
        if not labels:
            raise ValueError("images are pruned by label: never every untagged image")
        for image in self.images(labels):
            with self._lock:
                if not image.tags and not self._used(image.id):
                    self._forget(image.id)

    def run(self, spec: ContainerSpec) -> Instance:
        with self._lock:
            self._check()
            image = self._local.get(_key(spec.image))
            if image is None:
                raise ImageNotFound(f"cannot create a container from {spec.image}: no such image")
            if spec.network is not None and spec.network not in self._networks:
                raise StartFailed(f"cannot start {spec.image}: network {spec.network} not found")
            cid = uuid.uuid4().hex + uuid.uuid4().hex
            name = spec.name or f"memory_{cid[:12]}"
            if any(c.name == name for c in self._containers.values()):
                raise ContainerConflict(f"cannot create {name}: the name is already in use")
            container = _Container(
                id=cid,
                name=name,
                spec=spec,
                image=image,
                labels={
                    **spec.labels,
                    LABEL_MANAGED: "true",
                    **({LABEL_PORT: str(spec.port)} if spec.port is not None else {}),
                },
            )
            self._containers[cid] = container
            container.state = "running"
            container.started_at = self._clock.now()
            logs, exit_code = (
                image.program(spec) if image.program else (image.logs, image.exit_code)
            )
            self._print(container, logs)
            if spec.port is not None:
                _publish(container)
            self._emit(container, "start")
            if exit_code is not None:
                self._exit(container, exit_code)
            return _instance(container)

    def list(self, labels: Mapping[str, str]) -> builtins.list[Instance]:
        with self._lock:
            self._check()
            return [
                _instance(c)
                for c in self._containers.values()
                if all(c.labels.get(k) == v for k, v in labels.items())
            ]

    def inspect(self, instance_id: str) -> Instance:
        with self._lock:
            self._check()
            return _instance(self._get(instance_id))

    def stop(self, instance_id: str, timeout_s: float = 10) -> None:
        with self._lock:
            self._check()
            container = self._get(instance_id)
            if container.state == "running":
                if container.image.handles_sigterm:
                    self._print(container, container.image.stop_logs)
                self._exit(container, 0 if container.image.handles_sigterm else 137)

    def wait(self, instance_id: str, timeout_s: float) -> int | None:
        deadline = time.monotonic() + timeout_s
        with self._written:
            self._check()
            container = self._get(instance_id)
            while container.state == "running" and not container.removed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._written.wait(remaining)
            return container.exit_code

    def build(
        self, spec: BuildSpec, on_line: LineSink, cancel: threading.Event | None = None
    ) -> str:
        cancel = cancel or threading.Event()
        with self._lock:
            self._check()
            self.builds.append(spec)
        sent = _sent_files(spec)
        text = spec.dockerfile_text
        if text is None:
            text = (spec.context / spec.dockerfile).read_text()
        steps = _instructions(text)
        base: FakeImage | None = None
        key = ""
        for number, (line, keyword, argument) in enumerate(steps, 1):
            if cancel.is_set():
                raise BuildCancelled(f"the build of {spec.tag} was cancelled")
            if keyword not in _INSTRUCTIONS:
                raise BuildFailed(
                    f"dockerfile parse error line {line}: unknown instruction: {keyword}"
                )
            on_line(f"Step {number}/{len(steps)} : {keyword} {argument}")
            if keyword == "FROM":
                with self._lock:
                    base = self._local.get(_key(argument.split()[0]))
                if base is None:
                    raise BuildFailed(f"pull access denied for {argument}: no such image")
                key = base.id
                on_line(f" ---> {key[7:19]}")
                continue
            if base is None:
                raise BuildFailed("no build stage in current context")
            step = f"{key} {keyword} {argument} {spec.build_args if keyword == 'RUN' else ''}"
            if keyword in ("COPY", "ADD"):
                step += _sources_digest(sent, shlex.split(argument)[:-1])
            key = _sha256(step)
            with self._lock:
                cached = key in self._layers
            if cached:
                on_line(" ---> Using cache")
            elif keyword == "RUN":
                _fake_run(argument, cancel, spec.tag, on_line)
            if cancel.is_set():
                raise BuildCancelled(f"the build of {spec.tag} was cancelled")
            with self._lock:
                self._layers.add(key)
            on_line(f" ---> {key[7:19]}")
        if base is None:
            raise BuildFailed("the Dockerfile has no FROM")
        key = _sha256(f"{key} {sorted(spec.labels.items())}")
        with self._lock:
            same = next((i for i in self._local.values() if i.id == key), None)
        built = replace(
            base,
            ref=spec.tag,
            id=key,
            digest=_sha256(f"manifest {key}"),
            labels={**base.labels, **spec.labels},
            created=same.created if same is not None else self._clock.now(),  # from the cache
        )
        self.load(built)
        on_line(f"Successfully built {key[7:19]}")
        on_line(f"Successfully tagged {spec.tag}")
        return key

    def push(self, ref: str, auth: Credentials | None, on_line: LineSink) -> str:
        with self._lock:
            self._check()
            try:
                reference = image_reference(ref)
            except PullFailed as exc:
                raise PushFailed(str(exc)) from exc
            image = self._local.get(_key(ref))
            if image is None:
                raise PushFailed(f"cannot push {ref}: An image does not exist locally")
            host = reference.canonical.domain or ""
            required = self._logins.get(host)
            if required is not None and auth != required:
                raise PushFailed(f"cannot push {ref}: unauthorized: authentication required")
            digest = _sha256(f"manifest {image.id}")
            on_line(f"The push refers to repository [{reference.repository}]")
            on_line(f"{reference.effective_tag}: digest: {digest} size: 1024")
            self.publish(replace(image, ref=ref, digest=digest, credentials=required))
            return digest

    def remove(self, instance_id: str) -> None:
        with self._lock:
            self._check()
            container = self._get(instance_id)
            if container.state == "running":
                self._exit(container, 137)
            del self._containers[container.id]
            container.removed = True
            self._written.notify_all()
            self._emit(container, "destroy")

    def logs(self, instance_id: str, tail: int = 100) -> str:
        with self._lock:
            self._check()
            lines = self._get(instance_id).lines[-tail:] if tail > 0 else []
            return "".join(f"{line.text}\n" for line in lines)

    def output(
        self,
        instance_id: str,
        *,
        since: datetime | None = None,
        tail: int | None = None,
        follow: bool = False,
    ) -> MemoryOutputStream:
        with self._lock:
            self._check()
            container = self._get(instance_id)
            start = 0
            if since is not None:
                start = next(
                    (n for n, line in enumerate(container.lines) if line.at >= since),
                    len(container.lines),
                )
            if tail is not None:
                start = max(start, len(container.lines) - max(0, tail))
            return MemoryOutputStream(self, container, start, follow)

    def usage(self, instance_id: str) -> Usage | None:
        with self._lock:
            self._check()
            c = self._get(instance_id)
            if c.state != "running":
                return None
            limit = None if c.spec.memory_mb is None else c.spec.memory_mb << 20
            return Usage(c.cpu_ns, c.memory_bytes, limit)

    def ensure_network(self, name: str, labels: Mapping[str, str]) -> Network:
        with self._lock:
            self._check()
            if name not in self._networks:
                self._networks[name] = Network(
                    name, uuid.uuid4().hex, {**labels, LABEL_MANAGED: "true"}
                )
            return self._networks[name]

    def networks(self, labels: Mapping[str, str]) -> builtins.list[Network]:
        with self._lock:
            self._check()
            wanted = {**labels, LABEL_MANAGED: "true"}
            return [
                n
                for n in self._networks.values()
                if all(n.labels.get(k) == v for k, v in wanted.items())
            ]

    def remove_network(self, name: str) -> None:
        with self._lock:
            self._check()
            if name not in self._networks:
                return
            attached = [
                c.name
                for c in self._containers.values()
                if c.spec.network == name and c.state == "running"
            ]
            if attached:
                raise ContainerConflict(
                    f"cannot remove network {name}: it has active endpoints ({attached[0]})"
                )
            del self._networks[name]

    def events(self, labels: Mapping[str, str]) -> MemoryEventStream:
        with self._lock:
            self._check()
            stream = MemoryEventStream(self, labels)
            self._subscribers.append(stream)
            return stream

    # -- internals ------------------------------------------------------------------------

    def _tags(self, image_id: str) -> tuple[str, ...]:
        """The image's names (canonical: `docker.io/…` for a name without a registry)."""
        return tuple(k for k, i in self._local.items() if i.id == image_id and "@" not in k)

    def _used(self, image_id: str) -> bool:
        return any(c.image.id == image_id for c in self._containers.values())

    def _forget(self, image_id: str) -> None:
        for key in [k for k, i in self._local.items() if i.id == image_id]:
            del self._local[key]

    def _check(self) -> None:
        if not self._available:
            raise EngineUnavailable("the memory engine was made unavailable by the test")

    def _get(self, instance_id: str) -> _Container:
        container = self._containers.get(instance_id)
        if container is None:
            for candidate in self._containers.values():
                if candidate.name == instance_id or candidate.id.startswith(instance_id):
                    return candidate
            raise ContainerNotFound(f"no such container: {instance_id}")
        return container

    def _print(
        self, container: _Container, texts: Iterable[str], stream: OutputSource = "stdout"
    ) -> None:
        for text in texts:
            container.lines.append(OutputLine(self._clock.now(), stream, text))
        self._written.notify_all()

    def _exit(self, container: _Container, exit_code: int | None) -> None:
        _release(container)
        container.state = "exited"
        container.exit_code = exit_code
        container.finished_at = self._clock.now()
        self._written.notify_all()
        self._emit(container, "die")

    def _emit(self, container: _Container, action: EventAction) -> None:
        event = EngineEvent(
            action=action,
            instance_id=container.id,
            labels=dict(container.labels),
            exit_code=container.exit_code if action == "die" else None,
        )
        for stream in self._subscribers:
            stream.offer(event)

    def _unsubscribe(self, stream: MemoryEventStream) -> None:
        with self._lock:
            if stream in self._subscribers:
                self._subscribers.remove(stream)


class MemoryEventStream:
    def __init__(self, engine: MemoryEngine, labels: Mapping[str, str]) -> None:
        self._engine = engine
        self._labels = dict(labels)
        self._queue: queue.Queue[EngineEvent | None] = queue.Queue()

    def offer(self, event: EngineEvent) -> None:
        if all(event.labels.get(k) == v for k, v in self._labels.items()):
            self._queue.put(event)

    def __iter__(self) -> Iterator[EngineEvent]:
        return self

    def __next__(self) -> EngineEvent:
        event = self._queue.get()
        if event is None:
            self._queue.put(None)  # stay closed for every later call
            raise StopIteration
        return event

    def close(self) -> None:
        self._engine._unsubscribe(self)
        self._queue.put(None)


class MemoryOutputStream:
    """A container's lines from `start` on; following, it waits for more while it runs."""

    def __init__(
        self, engine: MemoryEngine, container: _Container, start: int, follow: bool
    ) -> None:
        self._engine = engine
        self._container = container
        self._next = start
        self._follow = follow
        self._closed = False

    def __iter__(self) -> Iterator[OutputLine]:
        return self

    def __next__(self) -> OutputLine:
        with self._engine._written:
            while True:
                if self._closed:
                    raise StopIteration
                if self._next < len(self._container.lines):
                    self._next += 1
                    return self._container.lines[self._next - 1]
                if not self._follow or self._container.removed:
                    raise StopIteration
                if self._container.state != "running":
                    raise StopIteration
                self._engine._written.wait(1.0)

    def close(self) -> None:
        with self._engine._written:
            self._closed = True
            self._engine._written.notify_all()


def baepo_test_images() -> builtins.list[FakeImage]:
    """Fakes of the images `scripts/test-images` builds, with the same refs and behaviour."""
    return [
        FakeImage(ref="baepo-test/busybox:1", handles_sigterm=False, program=busybox),
        FakeImage(
            ref="baepo-test/hello:1",
            logs=["hello v1 listening on :8080"],
            stop_logs=["hello: SIGTERM, stopped"],
            respond=_hello("1"),
        ),
        FakeImage(
            ref="baepo-test/hello:2",
            logs=["hello v2 listening on :8080"],
            stop_logs=["hello: SIGTERM, stopped"],
            respond=_hello("2"),
        ),
        FakeImage(ref="baepo-test/broken:1", logs=["broken: refusing to listen on :8080"]),
        FakeImage(
            ref="baepo-test/crash:1",
            logs=["crash: cannot start, exiting with status 1"],
            exit_code=1,
        ),
        # The Debian runtime images: their shell is busybox's here (no python3, no node).
        FakeImage(ref="baepo/runtime-python:3", handles_sigterm=False, program=busybox),
        FakeImage(ref="baepo/runtime-node:18", handles_sigterm=False, program=busybox),
        FakeImage(ref="baepo-test/python:3", handles_sigterm=False, program=busybox),
    ]


def busybox(spec: ContainerSpec) -> tuple[builtins.list[str], int | None]:
    """A few shell commands, enough for the suite's checks of mounts, workdir and exits:
    `sh -c "a && b; c"` (stopping at the first failure, as `sh -e`) of `cat`, `touch`, `pwd`,
    `echo`, `true`, `false`, `exit N` and `sleep N` (which keeps the container running)."""
    if not spec.command:
        return [], None
    argv = list(spec.command)
    script = argv[-1] if argv[0] in ("sh", "/bin/sh") and len(argv) >= 3 else shlex.join(argv)
    printed: builtins.list[str] = []
    for command in re.split(r"&&|;|\n", script):
        words = shlex.split(command)
        if not words:
            continue
        name, args = words[0], words[1:]
        if name == "sleep":
            return printed, None
        if name == "exit":
            return printed, int(args[0]) if args else 0
        if name == "false":
            return printed, 1
        if name == "echo":
            printed.append(" ".join(args))
        elif name == "pwd":
            printed.append(spec.workdir or "/")
        elif name in ("cat", "touch"):
            for arg in args:
                host, writable = _on_host(spec, arg)
                if name == "cat" and (host is None or not host.is_file()):
                    printed.append(f"cat: can't open '{arg}': No such file or directory")
                    return printed, 1
                if name == "cat" and host is not None:
                    printed.extend(host.read_text().splitlines())
                elif host is None or not writable:
                    printed.append(f"touch: {arg}: Read-only file system")
                    return printed, 1
                else:
                    host.touch()
        elif name != "true":
            printed.append(f"sh: {name}: not found")
            return printed, 127
    return printed, 0


def _on_host(spec: ContainerSpec, path: str) -> tuple[Path | None, bool]:
    """Where `path` (in the container) lies on the host, through the spec's mounts, and
    whether it may be written; (None, False) outside every mount."""
    absolute = posixpath.normpath(posixpath.join(spec.workdir or "/", path))
    for mount in sorted(spec.mounts, key=lambda m: len(m.target), reverse=True):
        target = mount.target.rstrip("/")
        if absolute == target or absolute.startswith(target + "/"):
            return Path(mount.source) / absolute[len(target) :].lstrip("/"), not mount.read_only
    return None, False


def _hello(version: str) -> Responder:
    def respond(path: str, env: Mapping[str, str]) -> tuple[int, str]:
        if path == "/healthz":
            return 200, "ok\n"
        if path == "/":
            message = env.get("MESSAGE")
            return 200, f"hello v{version}\n" + (f"message: {message}\n" if message else "")
        return 404, "not found\n"

    return respond


def _publish(container: _Container) -> None:
    respond = container.image.respond
    if respond is None:
        # Hold a port that refuses connections, as an app that never listens.
        reserved = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        reserved.bind(("127.0.0.1", 0))
        container.reserved = reserved
        container.host_port = int(reserved.getsockname()[1])
        return

    def served() -> None:  # each request costs the instance a millisecond of CPU time
        container.cpu_ns += 1_000_000

    handler = _handler(respond, dict(container.spec.env), served)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name=f"memory-engine-{container.name}",
        daemon=True,
    )
    thread.start()
    container.server = server
    container.host_port = int(server.server_address[1])


def _release(container: _Container) -> None:
    if container.server is not None:
        container.server.shutdown()
        container.server.server_close()
        container.server = None
    if container.reserved is not None:
        container.reserved.close()
        container.reserved = None
    container.host_port = None


def _handler(
    respond: Responder, env: Mapping[str, str], served: Callable[[], None]
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served()
            status, body = respond(self.path.split("?", 1)[0], env)
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def _instance(c: _Container) -> Instance:
    return Instance(
        id=c.id,
        name=c.name,
        image=c.spec.image,
        image_id=c.image.id,
        labels=dict(c.labels),
        state=c.state,
        exit_code=c.exit_code,
        port=c.spec.port,
        address=f"127.0.0.1:{c.host_port}" if c.host_port is not None else None,
        started_at=c.started_at,
        finished_at=c.finished_at,
        oom_killed=False,
        error=c.error,
        limits=Limits(
            cpu=c.spec.cpu,
            memory_mb=c.spec.memory_mb,
            pids_limit=c.spec.pids_limit if c.spec.pids_limit > 0 else None,
            no_new_privileges=True,
            cap_drop=("ALL",),
            cap_add=DEFAULT_CAPABILITIES,
        ),
    )


def _instructions(text: str) -> builtins.list[tuple[int, str, str]]:
    """(line number, KEYWORD, argument) of each Dockerfile instruction, continuations joined."""
    steps: builtins.list[tuple[int, str, str]] = []
    pending, first = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        first = first or number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, argument = (pending + line).strip().partition(" ")
        steps.append((first, keyword.upper(), argument.strip()))
        pending, first = "", 0
    return steps


def _sent_files(spec: BuildSpec) -> dict[str, bytes]:
    """The files of the context as the engine receives them (the real tar, read back)."""
    stream = io.BytesIO(
        b"".join(
            context_tar(
                spec.context, dockerfile=spec.dockerfile, dockerfile_text=spec.dockerfile_text
            )
        )
    )
    with tarfile.open(fileobj=stream) as tar:
        return {
            member.name: (tar.extractfile(member) or io.BytesIO()).read()
            for member in tar.getmembers()
            if member.isfile()
        }


def _sources_digest(sent: Mapping[str, bytes], sources: Sequence[str]) -> str:
    """A digest of what COPY/ADD `sources` take from the context (by name and content)."""
    digest = hashlib.sha256()
    for source in sources:
        prefix = posixpath.normpath(source).lstrip("/")
        for name in sorted(sent):
            if prefix == "." or name == prefix or name.startswith(prefix + "/"):
                digest.update(name.encode() + b"\0" + sent[name])
    return digest.hexdigest()


def _fake_run(command: str, cancel: threading.Event, tag: str, on_line: LineSink) -> None:
    """A RUN step: `exit N` fails the build, `sleep N` waits (until cancelled)."""
    on_line(" ---> Running in 0123456789ab")
    failed = re.search(r"\bexit (\d+)", command)
    if failed and int(failed.group(1)) != 0:
        code = failed.group(1)
        raise BuildFailed(f"The command '/bin/sh -c {command}' returned a non-zero code: {code}")
    slept = re.search(r"\bsleep (\d+)", command)
    if slept and cancel.wait(int(slept.group(1))):
        raise BuildCancelled(f"the build of {tag} was cancelled")


def _key(ref: str) -> str:
    return image_reference(ref).canonical.with_default_tag()


def _keys(image: FakeImage) -> builtins.list[str]:
    repository = image_reference(image.ref).canonical.repository
    return [_key(image.ref), f"{repository}@{image.digest}"]


def _sha256(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
