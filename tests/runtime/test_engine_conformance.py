"""One suite for the `Engine` interface, run against MemoryEngine, the real DockerEngine (on
dockerd and on Podman) and SwarmEngine (on the test swarm: tests/swarm_cluster.py).

The images are those of `scripts/test-images` (and their fakes, `baepo_test_images()`).
"""

from __future__ import annotations

import queue
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from baepo.runtime import (
    DEFAULT_CAPABILITIES,
    LABEL_MANAGED,
    LABEL_SERVICE,
    ContainerConflict,
    ContainerNotFound,
    ContainerSpec,
    Engine,
    EngineEvent,
    ImageNotFound,
    Instance,
    Mount,
    OutputLine,
    OutputStream,
    PullFailed,
    StartFailed,
    Usage,
)
from tests.runtime.conftest import engine_of
from tests.runtime.waiting import answering, eventually, http_get

Spec = Callable[..., ContainerSpec]


@pytest.fixture(
    params=[
        "memory",
        pytest.param("docker", marks=pytest.mark.integration),
        pytest.param("podman", marks=pytest.mark.integration),
        pytest.param("swarm", marks=[pytest.mark.integration, pytest.mark.on_the_swarm]),
    ]
)
def engine(request: pytest.FixtureRequest, run_labels: dict[str, str]) -> Iterator[Engine]:
    """The runtime's engines, and here also `SwarmEngine` on the test swarm."""
    yield from engine_of(request, run_labels)


def on_swarm_it_differs(request: pytest.FixtureRequest, reason: str) -> None:
    """Mark the test as failing on `SwarmEngine`, for a difference docs/swarm.md explains."""
    if request.node.callspec.params.get("engine") == "swarm":
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))


def exited(engine: Engine, instance_id: str, timeout_s: float = 20) -> Instance:
    def probe() -> Instance | None:
        instance = engine.inspect(instance_id)
        return instance if instance.state == "exited" else None

    return eventually(probe, timeout_s, f"{instance_id} exits")


def test_run_serves_at_its_network_address(engine: Engine, spec: Spec) -> None:
    instance = engine.run(spec("baepo-test/hello:1", port=8080))

    assert instance.running
    assert instance.port == 8080
    assert instance.address is not None
    assert instance.url == f"http://{instance.address}"
    assert answering(f"{instance.url}/").text.startswith("hello v1")
    health = answering(f"{instance.url}/healthz")
    assert health.status_code == 200
    assert instance.started_at is not None
    assert instance.exit_code is None


def test_two_instances_get_their_own_addresses(engine: Engine, spec: Spec) -> None:
    one = engine.run(spec("baepo-test/hello:1", port=8080))
    two = engine.run(spec("baepo-test/hello:2", port=8080))

    assert one.address != two.address
    assert "hello v1" in answering(f"{one.url}/").text
    assert "hello v2" in answering(f"{two.url}/").text


def test_env_passes_through(engine: Engine, spec: Spec) -> None:
    instance = engine.run(spec("baepo-test/hello:1", port=8080, env={"MESSAGE": "from baepo"}))

    assert "message: from baepo" in answering(f"{instance.url}/").text


def test_labels_are_applied_and_marked_managed(engine: Engine, spec: Spec) -> None:
    instance = engine.run(spec("baepo-test/hello:1", port=8080, labels={LABEL_SERVICE: "web"}))

    assert instance.labels[LABEL_SERVICE] == "web"
    assert instance.labels[LABEL_MANAGED] == "true"
    assert engine.inspect(instance.id).labels == instance.labels


def test_list_filters_by_labels_and_includes_exited(
    engine: Engine, spec: Spec, run_labels: dict[str, str]
) -> None:
    web = engine.run(spec("baepo-test/hello:1", port=8080, labels={LABEL_SERVICE: "web"}))
    worker = engine.run(spec("baepo-test/crash:1", labels={LABEL_SERVICE: "worker"}))
    exited(engine, worker.id)

    assert [i.id for i in engine.list({**run_labels, LABEL_SERVICE: "web"})] == [web.id]
    crashed = engine.list({**run_labels, LABEL_SERVICE: "worker"})
    assert [(i.id, i.state, i.exit_code) for i in crashed] == [(worker.id, "exited", 1)]
    assert {i.id for i in engine.list(run_labels)} == {web.id, worker.id}
    assert engine.list({**run_labels, LABEL_SERVICE: "nobody"}) == []


def test_stop_then_remove(engine: Engine, spec: Spec, run_labels: dict[str, str]) -> None:
    instance = engine.run(spec("baepo-test/hello:1", port=8080))
    url = f"{instance.url}/"
    answering(url)

    engine.stop(instance.id, timeout_s=10)

    stopped = engine.inspect(instance.id)
    assert stopped.state == "exited"
    assert stopped.exit_code == 0  # the app handled SIGTERM
    assert stopped.address is None
    assert stopped.finished_at is not None
    assert http_get(url) is None
    engine.stop(instance.id)  # stopping a stopped instance is a no-op

    engine.remove(instance.id)

    with pytest.raises(ContainerNotFound):
        engine.inspect(instance.id)
    assert engine.list(run_labels) == []


def test_stop_kills_an_app_that_ignores_sigterm_after_the_timeout(
    engine: Engine, spec: Spec
) -> None:
    # sleep as PID 1 has no SIGTERM handler, so the signal is ignored.
    instance = engine.run(spec("baepo-test/busybox:1", command=["sleep", "600"]))

    engine.stop(instance.id, timeout_s=1)

    assert engine.inspect(instance.id).exit_code == 137


def test_remove_kills_a_running_instance(engine: Engine, spec: Spec) -> None:
    instance = engine.run(spec("baepo-test/broken:1", port=8080))

    engine.remove(instance.id)

    with pytest.raises(ContainerNotFound):
        engine.inspect(instance.id)


def test_a_crash_keeps_its_exit_code_and_logs(engine: Engine, spec: Spec) -> None:
    instance = engine.run(spec("baepo-test/crash:1", port=8080))

    crashed = exited(engine, instance.id)

    assert crashed.exit_code == 1
    assert crashed.address is None
    assert "crash: cannot start, exiting with status 1" in engine.logs(instance.id)


def test_a_broken_app_runs_logs_and_never_answers(engine: Engine, spec: Spec) -> None:
    instance = engine.run(spec("baepo-test/broken:1", port=8080))

    eventually(
        lambda: True if "refusing to listen" in engine.logs(instance.id) else None,
        what="the broken app's log line",
    )
    running = engine.inspect(instance.id)
    assert running.running
    assert running.address is not None
    # Nothing listens, so the connection is refused: an answer of any status would mean
    # something else holds the instance's address (as the engine's port proxy would), and a
    # TCP health check would pass for a dead app.
    host, port = running.address.rsplit(":", 1)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, int(port)), timeout=5).close()


def test_logs_tail(engine: Engine, spec: Spec) -> None:
    instance = engine.run(spec("baepo-test/hello:1", port=8080))
    eventually(lambda: engine.logs(instance.id) or None, what="a first log line")
    engine.stop(instance.id)

    assert engine.logs(instance.id, tail=1) == "hello: SIGTERM, stopped\n"
    assert "hello v1 listening on :8080" in engine.logs(instance.id, tail=100)


def test_output_lines_carry_when_they_were_written(engine: Engine, spec: Spec) -> None:
    instance = engine.run(spec("baepo-test/crash:1"))
    crashed = exited(engine, instance.id)

    [line] = list(engine.output(instance.id))

    assert (line.stream, line.text) == ("stdout", "crash: cannot start, exiting with status 1")
    assert line.at.utcoffset() == timedelta(0)
    assert crashed.started_at is not None and crashed.finished_at is not None
    slack = timedelta(seconds=1)
    assert crashed.started_at - slack <= line.at <= crashed.finished_at + slack


def test_output_since_and_tail(engine: Engine, spec: Spec) -> None:
    instance = engine.run(spec("baepo-test/hello:1", port=8080))
    eventually(lambda: engine.logs(instance.id) or None, what="a first log line")
    engine.stop(instance.id)

    lines = list(engine.output(instance.id))

    assert [line.text for line in lines] == [
        "hello v1 listening on :8080",
        "hello: SIGTERM, stopped",
    ]
    assert lines[0].at <= lines[1].at
    assert list(engine.output(instance.id, tail=1)) == lines[1:]
    assert list(engine.output(instance.id, tail=0)) == []
    # From a line's time on: that line and those after it, and those before it with the very
    # same time (Podman stamps lines to the second only).
    since = list(engine.output(instance.id, since=lines[1].at))
    assert since == lines[len(lines) - len(since) :] and since[-1] == lines[1]
    assert list(engine.output(instance.id, since=lines[1].at + timedelta(seconds=5))) == []


def _pump(stream: OutputStream) -> tuple[queue.Queue[OutputLine | None], threading.Thread]:
    """Read `stream` in a thread into a queue; None once it ended."""
    received: queue.Queue[OutputLine | None] = queue.Queue()

    def pump() -> None:
        try:
            for line in stream:
                received.put(line)
        finally:
            received.put(None)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    return received, reader


def test_a_follow_gets_new_lines_and_ends_when_the_instance_stops(
    engine: Engine, spec: Spec
) -> None:
    instance = engine.run(spec("baepo-test/hello:1", port=8080))
    received, reader = _pump(engine.output(instance.id, follow=True))
    first = received.get(timeout=20)
    assert first is not None and first.text == "hello v1 listening on :8080"
    assert received.empty()  # it waits for more

    engine.stop(instance.id)

    last = received.get(timeout=20)
    assert last is not None and last.text == "hello: SIGTERM, stopped"
    assert received.get(timeout=20) is None  # the instance stopped: the follow ended
    reader.join(timeout=5)
    assert not reader.is_alive()


def test_close_ends_a_quiet_follow(engine: Engine, spec: Spec) -> None:
    instance = engine.run(spec("baepo-test/broken:1", port=8080))
    stream = engine.output(instance.id, follow=True)
    received, reader = _pump(stream)
    first = received.get(timeout=20)
    assert first is not None and "refusing to listen" in first.text

    stream.close()

    assert received.get(timeout=5) is None
    reader.join(timeout=5)
    assert not reader.is_alive()
    assert engine.inspect(instance.id).running


def test_limits_and_hardening_are_applied(
    engine: Engine, spec: Spec, request: pytest.FixtureRequest
) -> None:
    on_swarm_it_differs(request, "Swarm's API 1.41 cannot ask for no-new-privileges")
    instance = engine.run(spec("baepo-test/hello:1", port=8080, cpu=0.5, memory_mb=128))

    limits = engine.inspect(instance.id).limits
    assert limits.cpu == 0.5
    assert limits.memory_mb == 128
    assert limits.pids_limit == 512
    assert limits.no_new_privileges
    assert limits.cap_drop == ("ALL",)
    assert set(limits.cap_add) == set(DEFAULT_CAPABILITIES)
    assert answering(f"{instance.url}/").text.startswith("hello v1")  # still works


def test_an_absent_image_is_a_clean_error(
    engine: Engine, spec: Spec, request: pytest.FixtureRequest
) -> None:
    on_swarm_it_differs(
        request,
        "a swarm pulls as it starts: an absent image is a refused start (StartFailed), "
        "and the manager's own image store is not where instances run",
    )
    assert engine.image_present("baepo-test/hello:1")
    assert not engine.image_present("baepo-test/absent:1")

    with pytest.raises(ImageNotFound, match=r"baepo-test/absent:1"):
        engine.run(spec("baepo-test/absent:1", port=8080))


@pytest.mark.parametrize(
    ("ref", "reason"),
    [
        ("baepo-test/hello:vé1", "'vé1' is not a valid tag"),
        ("baepo-test/Hello:1", "it must be lowercase"),
        ("baepo-test/hello@sha256:1234", "is not a digest"),
    ],
)
def test_a_malformed_reference_is_refused_by_the_one_grammar(
    engine: Engine, ref: str, reason: str
) -> None:
    """The rule the registry and `services create` apply (baepo.references), before the engine
    is asked anything."""
    with pytest.raises(PullFailed, match=reason):
        engine.pull(ref)


def test_the_output_of_an_unknown_instance_is_not_found(engine: Engine) -> None:
    with pytest.raises(ContainerNotFound):
        engine.output("0" * 64)


def test_unknown_instance_ids_are_not_found(engine: Engine) -> None:
    unknown = "0" * 64
    for call in (engine.inspect, engine.stop, engine.remove, engine.logs):
        with pytest.raises(ContainerNotFound):
            call(unknown)


def test_a_taken_name_is_a_conflict(engine: Engine, spec: Spec) -> None:
    first = engine.run(spec("baepo-test/hello:1", port=8080))

    with pytest.raises(ContainerConflict):
        engine.run(spec("baepo-test/hello:1", port=8080, name=first.name))


def test_events_report_start_and_die(
    engine: Engine, spec: Spec, run_labels: dict[str, str]
) -> None:
    stream = engine.events(run_labels)
    received: queue.Queue[EngineEvent] = queue.Queue()

    def pump() -> None:
        for event in stream:
            received.put(event)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        instance = engine.run(spec("baepo-test/crash:1"))
        seen: list[EngineEvent] = []

        def died() -> EngineEvent | None:
            while not received.empty():
                seen.append(received.get())
            return next((e for e in seen if e.action == "die"), None)

        death = eventually(died, what="a die event")
        assert death.instance_id == instance.id
        assert death.exit_code == 1
        assert death.labels["baepo.test.run"] == run_labels["baepo.test.run"]
        assert [e.action for e in seen][:1] == ["start"]
    finally:
        stream.close()
    reader.join(timeout=10)
    assert not reader.is_alive()


def test_usage_counts_cpu_time_and_memory_of_a_running_instance_only(
    engine: Engine, spec: Spec
) -> None:
    instance = engine.run(spec("baepo-test/hello:1", port=8080, memory_mb=64))
    assert instance.url is not None
    answering(f"{instance.url}/")
    first = engine.usage(instance.id)
    assert first is not None
    assert 0 < first.memory_bytes <= 64 << 20
    assert first.memory_limit_bytes == 64 << 20

    def busier() -> Usage | None:
        answering(f"{instance.url}/")  # a CGI run: CPU time the instance spends
        now = engine.usage(instance.id)
        return now if now is not None and now.cpu_ns > first.cpu_ns else None

    eventually(busier, 20, "the instance's CPU time grows")
    engine.stop(instance.id, timeout_s=5)
    assert engine.usage(instance.id) is None
    with pytest.raises(ContainerNotFound):
        engine.usage("no-such-container")


def test_networks_are_made_once_listed_and_removed(
    engine: Engine, run_labels: dict[str, str], test_network: str
) -> None:
    again = engine.ensure_network(test_network, run_labels)

    assert again.name == test_network
    assert again.labels[LABEL_MANAGED] == "true"
    assert [n.name for n in engine.networks(run_labels)] == [test_network]
    other = engine.ensure_network(f"{test_network}-b", {**run_labels, "which": "b"})
    assert [n.name for n in engine.networks({**run_labels, "which": "b"})] == [other.name]

    engine.remove_network(other.name)
    engine.remove_network(other.name)  # gone already: a no-op

    assert [n.name for n in engine.networks(run_labels)] == [test_network]


def test_a_network_in_use_is_not_removed(engine: Engine, spec: Spec, test_network: str) -> None:
    instance = engine.run(spec("baepo-test/hello:1", port=8080))

    with pytest.raises(ContainerConflict):
        engine.remove_network(test_network)

    engine.remove(instance.id)
    engine.remove_network(test_network)
    assert engine.networks({"baepo.test.run": instance.labels["baepo.test.run"]}) == []


def test_a_missing_network_fails_the_start(engine: Engine, spec: Spec) -> None:
    with pytest.raises(StartFailed):
        engine.run(spec("baepo-test/hello:1", port=8080, network="baepo-test-no-such-network"))


# -- mounts, workdir, wait: what a pipeline step needs ------------------------------------


def test_a_mount_is_seen_and_written_through(engine: Engine, spec: Spec, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("from the host\n")
    mount = Mount(str(tmp_path), "/workspace")
    script = "cat /workspace/in.txt && touch /workspace/out.txt"

    instance = engine.run(
        spec("baepo-test/busybox:1", command=["sh", "-c", script], mounts=[mount])
    )

    assert engine.wait(instance.id, timeout_s=30) == 0
    assert "from the host" in engine.logs(instance.id)
    assert (tmp_path / "out.txt").exists()


def test_a_read_only_mount_refuses_writes(engine: Engine, spec: Spec, tmp_path: Path) -> None:
    mount = Mount(str(tmp_path), "/workspace", read_only=True)

    instance = engine.run(
        spec("baepo-test/busybox:1", command=["touch", "/workspace/out.txt"], mounts=[mount])
    )

    assert engine.wait(instance.id, timeout_s=30) == 1
    assert "Read-only file system" in engine.logs(instance.id)
    assert not (tmp_path / "out.txt").exists()


def test_the_command_starts_in_the_workdir(engine: Engine, spec: Spec, tmp_path: Path) -> None:
    (tmp_path / "here.txt").write_text("relative to the workdir\n")
    mount = Mount(str(tmp_path), "/workspace")

    instance = engine.run(
        spec(
            "baepo-test/busybox:1",
            command=["sh", "-c", "pwd && cat here.txt"],
            mounts=[mount],
            workdir="/workspace",
        )
    )

    assert engine.wait(instance.id, timeout_s=30) == 0
    assert engine.logs(instance.id).splitlines() == ["/workspace", "relative to the workdir"]


def test_wait_gives_the_exit_code_or_none_while_it_runs(engine: Engine, spec: Spec) -> None:
    crashed = engine.run(spec("baepo-test/crash:1"))
    sleeper = engine.run(spec("baepo-test/busybox:1", command=["sleep", "600"]))

    assert engine.wait(crashed.id, timeout_s=30) == 1
    assert engine.wait(crashed.id, timeout_s=0) == 1  # exited already: at once
    assert engine.wait(sleeper.id, timeout_s=0.5) is None
    assert engine.inspect(sleeper.id).running

    engine.stop(sleeper.id, timeout_s=0)

    assert engine.wait(sleeper.id, timeout_s=30) == 137
    with pytest.raises(ContainerNotFound):
        engine.wait("0" * 64, timeout_s=1)
