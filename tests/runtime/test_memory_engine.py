"""MemoryEngine's own helpers: the fake registry, crashes on demand, an engine that goes away."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from baepo.clock import FakeClock
from baepo.runtime import ContainerSpec, EngineUnavailable, ImageNotFound, PullFailed
from tests.fakes.engine import FakeImage, MemoryEngine, baepo_test_images
from tests.runtime.waiting import answering, http_get


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def memory(clock: FakeClock) -> Iterator[MemoryEngine]:
    engine = MemoryEngine(clock, images=baepo_test_images())
    yield engine
    engine.close()


def test_pull_from_the_fake_registry_by_tag_and_by_digest(memory: MemoryEngine) -> None:
    image = FakeImage(ref="localhost:5000/team/app:1", credentials=("robot", "s3cret"))
    memory.publish(image)
    assert not memory.image_present("localhost:5000/team/app:1")

    with pytest.raises(PullFailed, match="unauthorized"):
        memory.pull("localhost:5000/team/app:1")
    pulled = memory.pull("localhost:5000/team/app:1", auth=("robot", "s3cret"))

    assert (pulled.id, pulled.digest) == (image.id, image.digest)
    assert memory.image_present("localhost:5000/team/app:1")
    assert memory.image_present(f"localhost:5000/team/app@{image.digest}")
    with pytest.raises(ImageNotFound):
        memory.pull("localhost:5000/team/app:2", auth=("robot", "s3cret"))


def test_short_names_mean_docker_hub(memory: MemoryEngine) -> None:
    memory.load(FakeImage(ref="busybox"))

    assert memory.image_present("docker.io/library/busybox:latest")


def test_crash_on_demand(memory: MemoryEngine) -> None:
    instance = memory.run(ContainerSpec(image="baepo-test/hello:1", port=8080))
    url = f"{instance.url}/"
    answering(url)
    events = memory.events({})

    memory.crash(instance.id, exit_code=2, log="panic: out of cheese")

    crashed = memory.inspect(instance.id)
    assert (crashed.state, crashed.exit_code, crashed.address) == ("exited", 2, None)
    assert memory.logs(instance.id, tail=1) == "panic: out of cheese\n"
    assert http_get(url) is None
    event = next(events)
    assert (event.action, event.instance_id, event.exit_code) == ("die", instance.id, 2)
    events.close()
    assert list(events) == []


def test_an_unavailable_engine_refuses_everything(memory: MemoryEngine) -> None:
    instance = memory.run(ContainerSpec(image="baepo-test/hello:1", port=8080))

    memory.set_available(False)

    for call in (
        memory.ping,
        lambda: memory.list({}),
        lambda: memory.inspect(instance.id),
        lambda: memory.run(ContainerSpec(image="baepo-test/hello:1")),
    ):
        with pytest.raises(EngineUnavailable):
            call()
    memory.set_available(True)
    assert memory.inspect(instance.id).running  # it kept running meanwhile


def test_times_come_from_the_clock(memory: MemoryEngine, clock: FakeClock) -> None:
    instance = memory.run(ContainerSpec(image="baepo-test/broken:1", port=8080))
    clock.advance(30)
    memory.stop(instance.id)

    stopped = memory.inspect(instance.id)
    assert stopped.started_at is not None and stopped.finished_at is not None
    assert (stopped.finished_at - stopped.started_at).total_seconds() == 30


def test_close_releases_every_port(memory: MemoryEngine) -> None:
    instance = memory.run(ContainerSpec(image="baepo-test/hello:1", port=8080))
    url = f"{instance.url}/"
    answering(url)

    memory.close()

    assert http_get(url) is None
