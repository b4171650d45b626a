"""DockerEngine beyond the shared suite: what the engine really recorded, pulls, failures."""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import docker
import pytest

from baepo.runtime import (
    ContainerSpec,
    DockerEngine,
    Engine,
    EngineUnavailable,
    ImageNotFound,
    Instance,
    PullFailed,
    StartFailed,
)
from baepo.runtime.engine_api import _event, _instance, _timestamp
from tests.clients import Docker
from tests.components import missing
from tests.conftest import BaepoProcess, free_port
from tests.runtime.waiting import answering, eventually, http_get

Spec = Callable[..., ContainerSpec]


# -- without an engine --------------------------------------------------------------------


def test_an_absent_socket_is_unavailable_not_a_crash(tmp_path: Path) -> None:
    engine = DockerEngine(f"unix://{tmp_path}/docker.sock")  # building it touches nothing

    with pytest.raises(EngineUnavailable, match=r"docker\.sock"):
        engine.ping()
    with pytest.raises(EngineUnavailable):
        engine.run(ContainerSpec(image="baepo-test/hello:1", port=8080))


def test_engine_timestamps_with_nanoseconds() -> None:
    assert _timestamp("2026-11-26T09:44:36.123456789Z") == datetime(
        2026, 11, 26, 9, 44, 36, 123456, tzinfo=UTC
    )
    assert _timestamp("2026-11-26T09:44:36Z") == datetime(2026, 11, 26, 9, 44, 36, tzinfo=UTC)
    assert _timestamp("0001-01-01T00:00:00Z") is None
    assert _timestamp("") is None


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
def raw(docker_host: str) -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(base_url=docker_host)
    yield client
    client.close()


@integration
def test_the_engine_records_the_limits(
    engine: DockerEngine, spec: Spec, raw: docker.DockerClient
) -> None:
    instance = engine.run(spec("baepo-test/hello:1", port=8080, cpu=0.5, memory_mb=128))

    host = raw.api.inspect_container(instance.id)["HostConfig"]
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


@dataclass(frozen=True)
class Registry:
    host: str
    credentials: tuple[str, str]


@pytest.fixture(scope="session")
def distribution(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """`docker-registry serve` with htpasswd auth on a free loopback port."""
    binary = shutil.which("docker-registry")
    if binary is None:
        missing("docker-registry is not installed (apt install docker-registry)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import crypt
        except ImportError:
            missing("no crypt module to write a bcrypt htpasswd")
        # bcrypt cost 4, not 12: docker push checks the password on every request.
        hashed = crypt.crypt("s3cret", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
    root = tmp_path_factory.mktemp("distribution")
    (root / "htpasswd").write_text(f"robot:{hashed}\n")
    port = free_port()
    (root / "config.yml").write_text(
        "version: 0.1\n"
        "log: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}}}\n"
        f"http: {{addr: 127.0.0.1:{port}}}\n"
        f"auth: {{htpasswd: {{realm: test, path: {root / 'htpasswd'}}}}}\n"
    )
    log = (root / "registry.log").open("wb")
    process = subprocess.Popen(
        [binary, "serve", str(root / "config.yml")], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        eventually(
            lambda: True if http_get(f"http://127.0.0.1:{port}/v2/") is not None else None,
            what="docker-registry answers",
        )
        yield Registry(f"127.0.0.1:{port}", ("robot", "s3cret"))
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


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
