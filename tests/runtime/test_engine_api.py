"""DockerEngine beyond the shared suite: what the engine really recorded, pulls, failures."""

from __future__ import annotations

import base64
import json
import re
import secrets
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from baepo.runtime import (
    ContainerConflict,
    ContainerNotFound,
    ContainerSpec,
    DockerEngine,
    Engine,
    EngineError,
    EngineUnavailable,
    Image,
    ImageNotFound,
    Instance,
    Mount,
    PullFailed,
    StartFailed,
)
from baepo.runtime.boundary import boundary as _boundary
from baepo.runtime.engine_api import _event, _instance
from baepo.runtime.engine_http import ResponseError, TransportError, timestamp
from tests.clients import Docker
from tests.conftest import BaepoProcess, free_port
from tests.fakes.socket_engine import (
    Request,
    SocketEngine,
    end_chunks,
    hang,
    hung,
    send_chunk,
    send_chunked_head,
    send_json,
    send_raw,
)
from tests.runtime.registries import Registry
from tests.runtime.registries import distribution as serve_distribution
from tests.runtime.waiting import answering, eventually

Spec = Callable[..., ContainerSpec]


# -- without an engine --------------------------------------------------------------------


def test_an_absent_socket_is_unavailable_not_a_crash(tmp_path: Path) -> None:
    engine = DockerEngine(f"unix://{tmp_path}/docker.sock")  # building it touches nothing

    with pytest.raises(EngineUnavailable, match=r"docker\.sock"):
        engine.ping()
    with pytest.raises(EngineUnavailable):
        engine.run(ContainerSpec(image="baepo-test/hello:1", port=8080))


def test_engine_timestamps_with_nanoseconds() -> None:
    assert timestamp("2026-11-26T09:44:36.123456789Z") == datetime(
        2026, 11, 26, 9, 44, 36, 123456, tzinfo=UTC
    )
    assert timestamp("2026-11-26T09:44:36Z") == datetime(2026, 11, 26, 9, 44, 36, tzinfo=UTC)
    assert timestamp("0001-01-01T00:00:00Z") is None
    assert timestamp("") is None


def test_a_podman_style_inspect_reads_the_same() -> None:
    attrs = {
        "Id": "abc",
        "Name": "web-1",
        "Image": "sha256:feed",
        "Config": {
            "Image": "localhost:5000/app:1",
            "Labels": {"baepo.managed": "true", "baepo.port": "8080"},
        },
        "State": {"Status": "running", "ExitCode": 0, "StartedAt": "2026-11-26T09:44:36Z"},
        "HostConfig": {
            "NetworkMode": "baepo-web",
            "CapDrop": ["CAP_ALL"],
            "CapAdd": ["CAP_CHOWN"],
            "SecurityOpt": ["no-new-privileges"],
            "NanoCpus": 250_000_000,
            "Memory": 256 * 1024 * 1024,
            "PidsLimit": 512,
        },
        "NetworkSettings": {
            "Networks": {
                "podman": {"IPAddress": "10.88.0.7"},
                "baepo-web": {"IPAddress": "10.89.3.2"},
            }
        },
    }

    instance = _instance(attrs)

    assert (instance.name, instance.state, instance.exit_code) == ("web-1", "running", None)
    assert (instance.port, instance.address) == (8080, "10.89.3.2:8080")
    assert instance.limits.cap_drop == ("ALL",)
    assert instance.limits.cap_add == ("CHOWN",)
    assert (instance.limits.cpu, instance.limits.memory_mb) == (0.25, 256)


def test_events_are_read_from_docker_and_podman_shapes() -> None:
    docker_die = {
        "Type": "container",
        "Action": "die",
        "Actor": {"ID": "abc", "Attributes": {"exitCode": "1", "name": "x", "baepo.service": "w"}},
    }
    event = _event(docker_die)
    assert event is not None
    assert (event.action, event.instance_id, event.exit_code) == ("die", "abc", 1)
    assert event.labels == {"baepo.service": "w"}
    assert _event({"Type": "container", "Action": "exec_start", "Actor": {"ID": "a"}}) is None
    assert _event({"Type": "image", "Action": "pull"}) is None


# -- at the wire, against a scripted socket -------------------------------------------------

# What docker-py 7.1's containers.create(detach=True, …) sent for the same specs (recorded
# before it was replaced): the engines must keep reading our containers exactly as before.
SDK_BODIES = [
    (
        ContainerSpec(image="img:1"),
        DockerEngine("unix:///unused"),
        {
            "Tty": False,
            "OpenStdin": False,
            "StdinOnce": False,
            "AttachStdin": False,
            "AttachStdout": False,
            "AttachStderr": False,
            "Image": "img:1",
            "NetworkDisabled": False,
            "HostConfig": {
                "NetworkMode": "default",
                "RestartPolicy": {"Name": "no"},
                "CapAdd": [
                    "CHOWN",
                    "DAC_OVERRIDE",
                    "FOWNER",
                    "FSETID",
                    "KILL",
                    "SETGID",
                    "SETUID",
                    "NET_BIND_SERVICE",
                ],
                "CapDrop": ["ALL"],
                "SecurityOpt": ["no-new-privileges"],
                "PidsLimit": 512,
            },
            "Labels": {"baepo.managed": "true"},
        },
    ),
    (
        ContainerSpec(
            image="img:1",
            name="web-1",
            port=8080,
            command=["sh", "-c", "x"],
            env={"A": "1", "B": "two words"},
            labels={"baepo.service": "web"},
            cpu=0.25,
            memory_mb=256,
            pids_limit=100,
            network="baepo-web",
        ),
        DockerEngine(
            "unix:///unused",
            capabilities=("CHOWN",),
            ulimits={"nofile": (512, 1024), "nproc": (8192, 8192)},
        ),
        {
            "Tty": False,
            "OpenStdin": False,
            "StdinOnce": False,
            "AttachStdin": False,
            "AttachStdout": False,
            "AttachStderr": False,
            "Env": ["A=1", "B=two words"],
            "Cmd": ["sh", "-c", "x"],
            "Image": "img:1",
            "NetworkDisabled": False,
            "HostConfig": {
                "Memory": 268435456,
                "MemorySwap": 268435456,
                "NetworkMode": "baepo-web",
                "RestartPolicy": {"Name": "no"},
                "CapAdd": ["CHOWN"],
                "CapDrop": ["ALL"],
                "SecurityOpt": ["no-new-privileges"],
                "Ulimits": [
                    {"Name": "nofile", "Soft": 512, "Hard": 1024},
                    {"Name": "nproc", "Soft": 8192, "Hard": 8192},
                ],
                "PidsLimit": 100,
                "NanoCpus": 250000000,
            },
            "NetworkingConfig": {"baepo-web": None},
            "Labels": {"baepo.service": "web", "baepo.managed": "true", "baepo.port": "8080"},
        },
    ),
    (
        ContainerSpec(image="img:1", command=[], cpu=1 / 3, pids_limit=0, memory_mb=0),
        DockerEngine("unix:///unused", capabilities=()),
        {
            "Tty": False,
            "OpenStdin": False,
            "StdinOnce": False,
            "AttachStdin": False,
            "AttachStdout": False,
            "AttachStderr": False,
            "Cmd": [],
            "Image": "img:1",
            "NetworkDisabled": False,
            "HostConfig": {
                "Memory": 0,
                "MemorySwap": 0,
                "NetworkMode": "default",
                "RestartPolicy": {"Name": "no"},
                "CapDrop": ["ALL"],
                "SecurityOpt": ["no-new-privileges"],
                "NanoCpus": 333333333,
            },
            "Labels": {"baepo.managed": "true"},
        },
    ),
]


def answer_a_run(request: Request, connection: socket.socket) -> None:
    """An engine that creates and starts container c1, then inspects it as running."""
    if request.path.endswith("/containers/create"):
        send_json(connection, 201, {"Id": "c1", "Warnings": []})
    elif request.path.endswith("/start"):
        send_raw(connection, 204, b"")
    else:
        send_json(connection, 200, RUNNING)


@pytest.mark.parametrize(("spec", "engine", "expected"), SDK_BODIES)
def test_a_container_is_created_with_what_the_sdk_sent(
    spec: ContainerSpec, engine: DockerEngine, expected: dict[str, object], tmp_path: Path
) -> None:
    with SocketEngine(tmp_path / "engine.sock", answer_a_run) as wire:
        engine = DockerEngine(wire.url, capabilities=engine._capabilities, ulimits=engine._ulimits)
        engine.run(spec)

    create = wire.requests[1]
    assert (create.method, create.path) == ("POST", "/v1.41/containers/create")
    assert create.query == ({"name": spec.name} if spec.name else {})
    assert json.dumps(create.json()) == json.dumps(expected)  # key order too
    assert [(r.method, r.path) for r in wire.requests[2:4]] == [
        ("POST", "/v1.41/containers/c1/start"),
        ("GET", "/v1.41/containers/c1/json"),
    ]


def test_mounts_and_workdir_go_as_bind_mounts_and_working_dir(tmp_path: Path) -> None:
    """The SDK's `mounts=[Mount(type="bind")]` and `working_dir`, which docker-py's callers
    never used here: the engine's own names (a bind never needs the colon-split `Binds`)."""

    spec = ContainerSpec(
        image="img:1",
        mounts=[Mount("/srv/work:1", "/workspace"), Mount("/etc/ca", "/ca", read_only=True)],
        workdir="/workspace",
    )
    with SocketEngine(tmp_path / "engine.sock", answer_a_run) as wire:
        DockerEngine(wire.url).run(spec)

    body = cast(dict[str, Any], wire.requests[1].json())
    assert body["WorkingDir"] == "/workspace"
    assert body["HostConfig"]["Mounts"] == [
        {"Type": "bind", "Source": "/srv/work:1", "Target": "/workspace", "ReadOnly": False},
        {"Type": "bind", "Source": "/etc/ca", "Target": "/ca", "ReadOnly": True},
    ]


RUNNING = {
    "Id": "c1",
    "Name": "/web-1",
    "Config": {"Image": "img:1", "Labels": {"baepo.managed": "true"}, "Tty": False},
    "State": {"Status": "running"},
    "HostConfig": {},
}


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        (404, "No such container: c1", ContainerNotFound),
        (409, "Conflict. The container name is already in use", ContainerConflict),
        (500, 'the container name "web-1" is already in use by 4957', ContainerConflict),
        (500, "driver failed programming external connectivity", EngineError),
        (400, "invalid reference format", EngineError),
    ],
)
def test_error_statuses_map_to_the_rooms_errors(
    status: int, message: str, expected: type[EngineError], tmp_path: Path
) -> None:
    def answer(request: Request, connection: socket.socket) -> None:
        send_json(connection, status, {"message": message})

    with SocketEngine(tmp_path / "engine.sock", answer) as wire, pytest.raises(expected) as raised:
        DockerEngine(wire.url).stop("c1")

    assert type(raised.value) is expected
    assert str(raised.value) == f"cannot stop container c1: {message}"


def test_the_boundary_picks_the_error_for_what_was_asked() -> None:
    with (
        pytest.raises(ImageNotFound, match="cannot run x: no such image"),
        _boundary("run x", not_found=ImageNotFound),
    ):
        raise ResponseError(404, "no such image")
    with (
        pytest.raises(PullFailed, match="cannot pull x: boom"),
        _boundary("pull x", other=PullFailed),
    ):
        raise ResponseError(500, "boom")
    with pytest.raises(EngineUnavailable, match="cannot ping: the engine at"), _boundary("ping"):
        raise TransportError("the engine at unix:///x does not answer: refused")
    with pytest.raises(EngineUnavailable), _boundary("ping"):
        raise ConnectionResetError("reset")


def test_a_hung_engine_is_unavailable_within_the_timeout(tmp_path: Path) -> None:
    with hung(tmp_path / "engine.sock") as wire:
        engine = DockerEngine(wire.url, timeout_s=0.3)
        for call in (
            engine.ping,
            lambda: engine.list({}),
            lambda: engine.events({}),
            lambda: engine.run(ContainerSpec(image="img:1")),
            lambda: engine.usage("c1"),
        ):
            started = time.monotonic()
            with pytest.raises(EngineUnavailable, match=r"within 0\.3 s"):
                call()
            assert time.monotonic() - started < 2


def test_logs_without_a_tty_are_demultiplexed(tmp_path: Path) -> None:
    framed = b"".join(
        struct.pack(">BxxxL", stream, len(data)) + data
        for stream, data in [(1, b"out\n"), (2, b"err \xc3\xa9\n"), (1, b"bye\n")]
    )

    def answer(request: Request, connection: socket.socket) -> None:
        tty = request.path.startswith("/v1.41/containers/tty")
        if request.path.endswith("/logs"):
            send_raw(connection, 200, b"raw\n" if tty else framed)
        else:
            send_json(connection, 200, {**RUNNING, "Config": {"Tty": tty}})

    with SocketEngine(tmp_path / "engine.sock", answer) as wire:
        engine = DockerEngine(wire.url)
        assert engine.logs("c1", tail=5) == "out\nerr é\nbye\n"
        assert engine.logs("tty1") == "raw\n"

    logs = next(r for r in wire.requests if r.path.endswith("/logs"))
    assert logs.query == {
        "stderr": "1",
        "stdout": "1",
        "timestamps": "0",
        "follow": "0",
        "tail": "5",
    }


def _frame(stream: int, data: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(data)) + data


def test_output_is_read_frame_by_frame_with_timestamps(tmp_path: Path) -> None:
    framed = (
        _frame(1, b"2026-12-02T09:00:00.123456789Z out 1\n")
        + _frame(2, b"2026-12-02T09:00:01.5Z err \xc3\xa9\n")
        + _frame(1, b"2026-12-02T09:00:02Z \n")  # an empty line is a line
        + _frame(1, b"2026-12-02T09:00:03Z no newline")
    )
    cuts = [framed[:5], framed[5:40], framed[40:41], framed[41:]]  # however it arrives

    def answer(request: Request, connection: socket.socket) -> None:
        if request.path.endswith("/logs"):
            send_chunked_head(connection)
            tty = request.path.startswith("/v1.41/containers/tty")
            for cut in (
                [b"2026-12-02T09:00:00Z raw 1\r\n2026-12-02T09:", b"00:01Z raw 2\n"]
                if tty
                else cuts
            ):
                send_chunk(connection, cut)
            end_chunks(connection)
        else:
            send_json(
                connection,
                200,
                {**RUNNING, "Config": {"Tty": request.path.startswith("/v1.41/containers/tty")}},
            )

    since = datetime(2026, 12, 2, 8, 59, 59, 250000, tzinfo=UTC)
    with SocketEngine(tmp_path / "engine.sock", answer) as wire:
        engine = DockerEngine(wire.url)
        lines = list(engine.output("c1", since=since, tail=50))
        raw = list(engine.output("tty1", follow=True))

    assert [(line.stream, line.text) for line in lines] == [
        ("stdout", "out 1"),
        ("stderr", "err é"),
        ("stdout", ""),
        ("stdout", "no newline"),
    ]
    assert lines[0].at == datetime(2026, 12, 2, 9, 0, 0, 123456, tzinfo=UTC)
    assert lines[1].at == datetime(2026, 12, 2, 9, 0, 1, 500000, tzinfo=UTC)
    assert [(line.stream, line.text) for line in raw] == [
        ("stdout", "raw 1\r"),
        ("stdout", "raw 2"),
    ]
    asked = [r for r in wire.requests if r.path.endswith("/logs")]
    assert asked[0].query == {
        "stderr": "1",
        "stdout": "1",
        "timestamps": "1",
        "follow": "0",
        "tail": "50",
        "since": "1796201999.250000000",
    }
    assert (asked[1].query["follow"], asked[1].query["tail"]) == ("1", "all")


def test_output_of_a_missing_container_is_not_found(tmp_path: Path) -> None:
    def answer(request: Request, connection: socket.socket) -> None:
        send_json(connection, 404, {"message": "No such container: c9"})

    with (
        SocketEngine(tmp_path / "engine.sock", answer) as wire,
        pytest.raises(ContainerNotFound, match="No such container"),
    ):
        DockerEngine(wire.url).output("c9")


def test_an_output_stream_that_breaks_off_is_unavailable(tmp_path: Path) -> None:
    def answer(request: Request, connection: socket.socket) -> None:
        if request.path.endswith("/logs"):
            send_chunked_head(connection)
            send_chunk(connection, _frame(1, b"2026-12-02T09:00:00Z one\n"))
            send_chunk(connection, _frame(1, b"2026-12-02T09:00:00Z cut")[:-2])
            # hangs up mid-answer
        else:
            send_json(connection, 200, RUNNING)

    with SocketEngine(tmp_path / "engine.sock", answer) as wire:
        stream = DockerEngine(wire.url).output("c1")
        assert next(stream).text == "one"
        with pytest.raises(EngineUnavailable):
            next(stream)


DIGEST = "sha256:" + "ab" * 32


def pull_engine(path: Path, *messages: object) -> SocketEngine:
    def answer(request: Request, connection: socket.socket) -> None:
        if request.path.endswith("/images/create"):
            send_chunked_head(connection)
            for message in messages:
                send_chunk(connection, json.dumps(message).encode() + b"\r\n")
            end_chunks(connection)
        elif request.path.endswith("/json"):
            send_json(connection, 200, {"Id": "sha256:feed", "RepoDigests": []})
        else:
            send_raw(connection, 201, b"")

    return SocketEngine(path, answer)


def test_a_pull_by_digest_is_anonymous_unless_given_credentials(tmp_path: Path) -> None:
    ref = f"127.0.0.1:9/team/app@{DIGEST}"
    with pull_engine(tmp_path / "engine.sock", {"status": "Pulling"}, {"status": "Done"}) as wire:
        engine = DockerEngine(wire.url)
        assert engine.pull(ref) == Image(ref=ref, id="sha256:feed", digest=DIGEST)
        engine.pull(ref, auth=("robot", "s3cret"))

    pulls = [r for r in wire.requests if r.path == "/v1.41/images/create"]
    assert [r.query for r in pulls] == [{"tag": DIGEST, "fromImage": "127.0.0.1:9/team/app"}] * 2
    assert pulls[0].headers["x-registry-auth"] == "e30="  # {}: not the ambient credentials
    assert json.loads(base64.urlsafe_b64decode(pulls[1].headers["x-registry-auth"])) == {
        "username": "robot",
        "password": "s3cret",
    }
    inspect = next(r for r in wire.requests if r.path.startswith("/v1.41/images/127"))
    assert inspect.path == f"/v1.41/images/127.0.0.1:9/team/app%40{DIGEST}/json"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("manifest for 127.0.0.1:9/team/app:1 not found: manifest unknown", ImageNotFound),
        ("unauthorized: authentication required", PullFailed),
        ("Get http://127.0.0.1:9/v2/: dial tcp 127.0.0.1:9: connection refused", PullFailed),
    ],
)
def test_errors_inside_a_pull_stream_are_the_rooms(
    error: str, expected: type[EngineError], tmp_path: Path
) -> None:
    ref = f"127.0.0.1:9/team/app@{DIGEST}"
    with (
        pull_engine(
            tmp_path / "engine.sock",
            {"status": "Pulling from team/app"},
            {"errorDetail": {"message": error}, "error": error},
        ) as wire,
        pytest.raises(expected, match=re.escape(error)),
    ):
        DockerEngine(wire.url).pull(ref)

    assert not any(r.path.endswith("/json") for r in wire.requests)  # stopped at the error


def test_events_are_filtered_by_the_engine_and_end_on_close(tmp_path: Path) -> None:
    start = {
        "Type": "container",
        "Action": "start",
        "Actor": {"ID": "c1", "Attributes": {"baepo.managed": "true", "baepo.service": "w"}},
    }
    stranger = {**start, "Actor": {"ID": "c2", "Attributes": {"baepo.service": "w"}}}

    def answer(request: Request, connection: socket.socket) -> None:
        send_chunked_head(connection)
        send_chunk(connection, json.dumps(stranger).encode() + b"\n")
        send_chunk(connection, json.dumps(start).encode() + b"\n")
        hang(connection)

    with SocketEngine(tmp_path / "engine.sock", answer) as wire:
        stream = DockerEngine(wire.url, timeout_s=0.2).events({"baepo.service": "w"})
        first = next(stream)
        closer = threading.Timer(0.5, stream.close)  # after timeout_s: quiet is not an error
        closer.start()
        started = time.monotonic()
        assert list(stream) == []
        assert time.monotonic() - started < 2
        closer.join()

    assert (first.action, first.instance_id) == ("start", "c1")
    events = wire.requests[-1]
    assert events.path == "/v1.41/events"
    assert json.loads(events.query["filters"]) == {
        "type": ["container"],
        "event": ["start", "die", "destroy", "died", "remove"],
        "label": ["baepo.service=w", "baepo.managed=true"],
    }


# -- against the engine -------------------------------------------------------------------


def exited(engine: Engine, instance_id: str) -> Instance:
    return eventually(
        lambda: i if (i := engine.inspect(instance_id)).exit_code is not None else None,
        30,
        f"{instance_id} exits",
    )


integration = pytest.mark.integration


@pytest.fixture
def engine(docker_host: str, run_labels: dict[str, str]) -> Iterator[DockerEngine]:
    engine = DockerEngine(docker_host)
    yield engine
    for instance in engine.list(run_labels):
        engine.remove(instance.id)
    for network in engine.networks(run_labels):
        engine.remove_network(network.name)
    engine.close()


@pytest.fixture
def raw(docker_host: str, tmp_path: Path) -> Docker:
    """The docker CLI: what the engine recorded, read by another client."""
    return Docker(docker_host, tmp_path / "docker-config")


@integration
def test_the_engine_records_the_limits(engine: DockerEngine, spec: Spec, raw: Docker) -> None:
    instance = engine.run(spec("baepo-test/hello:1", port=8080, cpu=0.5, memory_mb=128))

    host = raw.inspect(instance.id)["HostConfig"]
    assert host["NanoCpus"] == 500_000_000
    assert host["Memory"] == host["MemorySwap"] == 128 * 1024 * 1024
    assert host["PidsLimit"] == 512
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["CapDrop"] == ["ALL"]
    assert host["RestartPolicy"]["Name"] in ("", "no")
    assert not any((host.get("PortBindings") or {}).values())  # nothing published


@integration
def test_a_wrong_port_refuses_connections(engine: DockerEngine, spec: Spec) -> None:
    """hello listens on 8080: at 9999 nothing accepts (no port proxy answers in its place)."""
    right = engine.run(spec("baepo-test/hello:1", port=8080))
    wrong = engine.run(spec("baepo-test/hello:1", port=9999))
    answering(f"{right.url}/healthz")

    assert wrong.address is not None and wrong.address.endswith(":9999")
    host, _, port = wrong.address.rpartition(":")
    with pytest.raises(OSError), socket.create_connection((host, int(port)), timeout=2):
        pass


@integration
def test_networks_are_isolated_from_each_other(
    engine: DockerEngine, spec: Spec, run_labels: dict[str, str], test_network: str
) -> None:
    app = engine.run(spec("baepo-test/hello:1", port=8080))
    answering(f"{app.url}/healthz")
    other = engine.ensure_network(f"{test_network}-other", run_labels).name
    host, _, port = (app.address or "").rpartition(":")
    fetch = ["sh", "-c", f"nc -w 2 {host} {port} </dev/null"]  # exits 0 once connected

    neighbour = engine.run(spec("baepo-test/busybox:1", command=fetch))
    stranger = engine.run(spec("baepo-test/busybox:1", command=fetch, network=other))

    assert exited(engine, neighbour.id).exit_code == 0
    assert exited(engine, stranger.id).exit_code != 0


@integration
def test_command_overrides_the_image(engine: DockerEngine, spec: Spec) -> None:
    instance = engine.run(spec("baepo-test/busybox:1", command=["sh", "-c", "echo hi; exit 3"]))

    done = eventually(
        lambda: i if (i := engine.inspect(instance.id)).exit_code is not None else None
    )
    assert done.exit_code == 3
    assert engine.logs(instance.id) == "hi\n"


@integration
def test_a_container_that_cannot_start_is_an_error_and_leaves_nothing(
    engine: DockerEngine, spec: Spec, run_labels: dict[str, str]
) -> None:
    with pytest.raises(StartFailed, match="no/such/binary"):
        engine.run(spec("baepo-test/busybox:1", command=["/no/such/binary"]))

    assert engine.list(run_labels) == []


@integration
def test_a_missing_network_is_a_start_failure_and_leaves_nothing(
    engine: DockerEngine, spec: Spec, run_labels: dict[str, str]
) -> None:
    with pytest.raises(StartFailed, match="no-such-network"):
        engine.run(spec("baepo-test/hello:1", port=8080, network="no-such-network"))

    assert engine.list(run_labels) == []


@integration
def test_pull_from_an_unreachable_registry_fails_cleanly(engine: DockerEngine) -> None:
    with pytest.raises(PullFailed, match=r"127\.0\.0\.1:9/nope:1"):
        engine.pull("127.0.0.1:9/nope:1")


@integration
def test_time_to_first_response(engine: DockerEngine, spec: Spec) -> None:
    """Not a benchmark (bench/deploy measures it): starting hello:1 answers, and how fast."""
    started = time.monotonic()
    instance = engine.run(spec("baepo-test/hello:1", port=8080))
    answering(f"{instance.url}/healthz")
    elapsed = time.monotonic() - started

    print(f"hello:1 run → first 200 in {elapsed * 1000:.0f} ms")


# -- pulls from a real registry: CNCF distribution (apt docker-registry) and Baepo's own ------


@pytest.fixture(scope="session")
def distribution(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """`docker-registry serve` with htpasswd auth on a free loopback port."""
    root = tmp_path_factory.mktemp("distribution")
    with serve_distribution(root, f"127.0.0.1:{free_port()}") as registry:
        yield registry


@pytest.fixture(params=["distribution", "baepo"])
def registry(request: pytest.FixtureRequest) -> Registry:
    if request.param == "distribution":
        return cast(Registry, request.getfixturevalue("distribution"))
    baepo = cast(BaepoProcess, request.getfixturevalue("baepo_server"))
    return Registry(baepo.host, (baepo.username, baepo.password))


@pytest.fixture
def pushed(docker_host: str, registry: Registry, tmp_path: Path) -> Iterator[str]:
    """hello:2 pushed by the docker CLI, then removed here: only the registry has it."""
    cli = Docker(docker_host, tmp_path / "docker-config")
    ref = f"{registry.host}/runtime/hello-{secrets.token_hex(3)}:2"
    user, password = registry.credentials
    cli("login", registry.host, "-u", user, "--password-stdin", input=password)
    cli("tag", "baepo-test/hello:2", ref)
    cli("push", ref)
    cli("rmi", ref)
    yield ref
    cli("rmi", "-f", ref, check=False)


@integration
def test_pull_with_credentials_resolves_the_digest_and_runs_by_it(
    engine: DockerEngine, spec: Spec, pushed: str, registry: Registry
) -> None:
    assert not engine.image_present(pushed)

    image = engine.pull(pushed, auth=registry.credentials)

    assert image.digest is not None and image.digest.startswith("sha256:")
    pinned = f"{pushed.rsplit(':', 1)[0]}@{image.digest}"
    assert engine.image_present(pinned)
    assert engine.pull(pinned, auth=registry.credentials).id == image.id
    instance = engine.run(spec(pinned, port=8080))
    assert answering(f"{instance.url}/").text.startswith("hello v2")


@integration
def test_pull_without_or_with_wrong_credentials_or_an_unknown_tag(
    engine: DockerEngine, pushed: str, registry: Registry
) -> None:
    user, _ = registry.credentials
    with pytest.raises(PullFailed, match=r"credentials|unauthorized|denied"):
        engine.pull(pushed)
    with pytest.raises(PullFailed, match=r"unauthorized|denied|credentials"):
        engine.pull(pushed, auth=(user, "wrong"))
    with pytest.raises(ImageNotFound, match="404"):
        engine.pull(pushed.rsplit(":", 1)[0] + ":404", auth=registry.credentials)


def test_a_container_exiting_under_a_list_or_inspect_is_asked_about_again() -> None:
    from baepo.runtime.engine_api import _past_exits
    from baepo.runtime.errors import EngineError

    answers: list[object] = [EngineError("500: read /proc/9869/cgroup: no such process"), "ok"]

    def call() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return str(answer)

    assert _past_exits(call) == "ok"

    def broken() -> str:
        raise EngineError("500: something else")

    with pytest.raises(EngineError, match="something else"):
        _past_exits(broken)
