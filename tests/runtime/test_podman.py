"""DockerEngine against Podman's Docker-compatible socket (`scripts/podman-engine`).

The shared suite runs against Podman as the `podman` param of the `engine` fixture
(test_engine_conformance.py). Here: how DockerEngine reads Podman's answers (hermetic, from
answers Podman 4.3 gave); DockerEngine's own tests from test_engine_api.py (pulls from a real
registry and Baepo's, start failures), run again against Podman; and what the two engines record
differently, checked where it matters: inside the container. All but the first part are
`integration`; what needs Podman skips where podman is not installed (and fails there when
the real thing is required: tests/components.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from baepo.runtime import (
    DEFAULT_CAPABILITIES,
    ContainerConflict,
    ContainerSpec,
    DockerEngine,
    Engine,
    Instance,
)
from baepo.runtime.boundary import boundary as _boundary
from baepo.runtime.engine_api import _event, _instance
from baepo.runtime.engine_http import ResponseError
from tests import components
from tests.clients import Docker
from tests.components import missing
from tests.runtime import test_engine_api as docker_tests
from tests.runtime.waiting import answering, eventually

integration = pytest.mark.integration

PULLED = re.compile(r"127\.0\.0\.1:\d+/runtime/hello-")

Spec = Callable[..., ContainerSpec]

# Capability numbers (linux/capability.h) of DEFAULT_CAPABILITIES.
CAPABILITY_BITS = {
    "CHOWN": 0,
    "DAC_OVERRIDE": 1,
    "FOWNER": 3,
    "FSETID": 4,
    "KILL": 5,
    "SETGID": 6,
    "SETUID": 7,
    "NET_BIND_SERVICE": 10,
}


# -- Podman's answers, read as Docker's ---------------------------------------------------


def test_a_podman_die_and_remove_read_as_docker_die_and_destroy() -> None:
    attributes = {
        "baepo.managed": "true",
        "baepo.service": "web",
        "containerExitCode": "1",
        "exitCode": "1",
        "image": "localhost/baepo-test/crash:1",
        "name": "web-1",
        "podId": "",
    }
    die = _event(
        {"Type": "container", "Action": "die", "Actor": {"ID": "c1", "Attributes": attributes}}
    )
    remove = _event(
        {"Type": "container", "Action": "remove", "Actor": {"ID": "c1", "Attributes": attributes}}
    )

    assert die is not None and remove is not None
    assert (die.action, die.exit_code) == ("die", 1)
    assert die.labels == {"baepo.managed": "true", "baepo.service": "web"}
    assert remove.action == "destroy"


def test_a_stopped_podman_container_has_no_address() -> None:
    attrs = {
        "Id": "c1",
        "Config": {"Labels": {"baepo.port": "8080"}},
        "State": {"Status": "exited", "ExitCode": 0},
        "HostConfig": {"NetworkMode": "baepo-web"},
        "NetworkSettings": {"Networks": {"baepo-web": {"IPAddress": "10.89.3.2"}}},
    }

    instance = _instance(attrs)

    assert (instance.state, instance.exit_code, instance.port) == ("exited", 0, 8080)
    assert instance.address is None and instance.url is None


def test_bounding_capabilities_replace_podmans_relative_report() -> None:
    # "drop ALL, add CHOWN and KILL", as Podman's compatible inspect reports it.
    host = {"CapAdd": [], "CapDrop": ["AUDIT_WRITE", "DAC_OVERRIDE", "MKNOD", "NET_RAW"]}
    attrs = {"Id": "c1", "State": {"Status": "running"}, "HostConfig": host}

    limits = _instance(attrs, ("CHOWN", "KILL")).limits

    assert (limits.cap_drop, limits.cap_add) == (("ALL",), ("CHOWN", "KILL"))


def test_a_name_in_use_is_a_conflict() -> None:
    explanation = (
        'container create: creating container storage: the container name "web-1" is already '
        "in use by 4957. You have to remove that container to be able to reuse that name: that "
        "name is already in use"
    )

    with pytest.raises(ContainerConflict, match="web-1"), _boundary("create web-1"):
        raise ResponseError(500, explanation)


# -- against Podman ------------------------------------------------------------------------


@pytest.fixture
def engine(podman_host: str, run_labels: dict[str, str], raw: Docker) -> Iterator[DockerEngine]:
    """DockerEngine on Podman's socket: what the reused tests below get as `engine`."""
    engine = DockerEngine(podman_host)
    yield engine
    for instance in engine.list(run_labels):
        engine.remove(instance.id)
    for network in engine.networks(run_labels):
        engine.remove_network(network.name)
    engine.close()
    # What the pull tests pulled (the `pushed` fixture only cleans up dockerd).
    # By tag: the image itself is baepo-test/hello:2, which must stay.
    tags = raw("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    for tag in tags:
        if PULLED.match(tag):
            raw("rmi", tag, check=False)


@pytest.fixture
def raw(podman_host: str, tmp_path: Path) -> Docker:
    """The docker CLI on Podman's socket: what Podman recorded, read by another client."""
    return Docker(podman_host, tmp_path / "docker-config")


@pytest.fixture(params=["docker", "podman"])
def either(request: pytest.FixtureRequest, run_labels: dict[str, str]) -> Iterator[DockerEngine]:
    """DockerEngine on dockerd and on Podman, for what both must do the same way."""
    engine = DockerEngine(request.getfixturevalue(f"{request.param}_host"))
    yield engine
    for instance in engine.list(run_labels):
        engine.remove(instance.id)
    for network in engine.networks(run_labels):
        engine.remove_network(network.name)
    engine.close()


@pytest.fixture
def raw_either(either: DockerEngine, tmp_path: Path) -> Docker:
    return Docker(either.base_url, tmp_path / "docker-config")


@pytest.fixture
def test_network(request: pytest.FixtureRequest, run_labels: dict[str, str]) -> str:
    """The test's network, on the engine the test runs on (`either`, else `engine`)."""
    which = "either" if "either" in request.fixturenames else "engine"
    engine: DockerEngine = request.getfixturevalue(which)
    name = f"baepo-test-{run_labels['baepo.test.run'][:12]}"
    return engine.ensure_network(name, run_labels).name


# -- DockerEngine's own tests, against Podman ----------------------------------------------
# Rebound here, they resolve `engine` to the Podman fixture above. Images are pushed by the
# docker CLI (against dockerd) and pulled by Podman: over plain HTTP, as the registries.conf of
# scripts/podman-engine allows for 127.0.0.1.

distribution = docker_tests.distribution
registry = docker_tests.registry
pushed = docker_tests.pushed

test_command_overrides_the_image = docker_tests.test_command_overrides_the_image
test_a_container_that_cannot_start_is_an_error_and_leaves_nothing = (
    docker_tests.test_a_container_that_cannot_start_is_an_error_and_leaves_nothing
)
test_a_missing_network_is_a_start_failure_and_leaves_nothing = (
    docker_tests.test_a_missing_network_is_a_start_failure_and_leaves_nothing
)
test_pull_from_an_unreachable_registry_fails_cleanly = (
    docker_tests.test_pull_from_an_unreachable_registry_fails_cleanly
)
test_time_to_first_response = docker_tests.test_time_to_first_response
test_a_wrong_port_refuses_connections = docker_tests.test_a_wrong_port_refuses_connections
test_networks_are_isolated_from_each_other = docker_tests.test_networks_are_isolated_from_each_other
test_pull_with_credentials_resolves_the_digest_and_runs_by_it = (
    docker_tests.test_pull_with_credentials_resolves_the_digest_and_runs_by_it
)
test_pull_without_or_with_wrong_credentials_or_an_unknown_tag = (
    docker_tests.test_pull_without_or_with_wrong_credentials_or_an_unknown_tag
)


# -- what the engines record differently ---------------------------------------------------


def outward_address() -> str:
    """This machine's address on its default route; skip (or fail) if it has none."""
    return components.outward_address() or missing("no network address but loopback")


def finished(engine: Engine, instance_id: str) -> Instance:
    return eventually(
        lambda: i if (i := engine.inspect(instance_id)).exit_code is not None else None,
        what=f"{instance_id} exits",
    )


@integration
def test_hardening_is_the_same_inside_the_container(either: DockerEngine, spec: Spec) -> None:
    """Podman reports capabilities relative to its own defaults; the process has the same."""
    script = "grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status; ulimit -n; ulimit -u"
    instance = either.run(spec("baepo-test/busybox:1", command=["sh", "-c", script]))

    assert finished(either, instance.id).exit_code == 0
    mask = f"{sum(1 << CAPABILITY_BITS[c] for c in DEFAULT_CAPABILITIES):016x}"
    lines = either.logs(instance.id).split()
    assert lines[:6] == ["CapEff:", mask, "CapBnd:", mask, "NoNewPrivs:", "1"]
    assert all(limit == "unlimited" or int(limit) >= 1024 for limit in lines[6:8])
    limits = either.inspect(instance.id).limits
    assert limits.cap_drop == ("ALL",)
    assert set(limits.cap_add) == set(DEFAULT_CAPABILITIES)
    assert limits.no_new_privileges


@integration
def test_nothing_is_published_on_the_host(
    either: DockerEngine, spec: Spec, raw_either: Docker
) -> None:
    instance = either.run(spec("baepo-test/hello:1", port=8080))

    assert answering(f"{instance.url}/").text.startswith("hello v1")
    attrs = raw_either.inspect(instance.id)
    assert not any((attrs["HostConfig"].get("PortBindings") or {}).values())
    assert not any((attrs["NetworkSettings"].get("Ports") or {}).values())


@integration
def test_podman_records_the_limits(engine: DockerEngine, spec: Spec, raw: Docker) -> None:
    instance = engine.run(spec("baepo-test/hello:1", port=8080, cpu=0.5, memory_mb=128))

    attrs = raw.inspect(instance.id)
    host = attrs["HostConfig"]
    assert host["NanoCpus"] == 500_000_000
    assert host["Memory"] == host["MemorySwap"] == 128 * 1024 * 1024
    assert host["PidsLimit"] == 512
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["RestartPolicy"]["Name"] in ("", "no")
    assert not any((host.get("PortBindings") or {}).values())  # nothing published
    # The defaults of scripts/podman-engine's containers.conf: runc refuses the host's here.
    ulimits = {u["Name"]: (u["Soft"], u["Hard"]) for u in host["Ulimits"]}
    assert ulimits["RLIMIT_NOFILE"] == (1024, 1024)
    assert ulimits["RLIMIT_NPROC"] == (32768, 32768)  # counts every root task on the host


@integration
def test_explicit_ulimits_apply(podman_host: str, spec: Spec, run_labels: dict[str, str]) -> None:
    # Podman drops its default ulimits when given any: pass nproc as well as nofile.
    engine = DockerEngine(podman_host, ulimits={"nofile": (512, 1024), "nproc": (8192, 8192)})
    try:
        script = "ulimit -Sn; ulimit -Hn; ulimit -u"
        instance = engine.run(spec("baepo-test/busybox:1", command=["sh", "-c", script]))

        assert finished(engine, instance.id).exit_code == 0
        assert engine.logs(instance.id).split() == ["512", "1024", "8192"]
    finally:
        for leftover in engine.list(run_labels):
            engine.remove(leftover.id)
        engine.close()
