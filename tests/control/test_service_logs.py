"""A service's logs as a user reads them: a crashed instance's last lines after it is gone,
the live tail of those that run, the event log beside them, the filters, and a follow."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from baepo.control import (
    MAX_LOG_LINES,
    Caller,
    InvalidLogQuery,
    LogEntry,
    LogFollower,
    LogQuery,
    LogSource,
    ServiceNotFound,
    SpecChange,
    TooManyFollowers,
    parse_since,
)
from baepo.control.service_logs import MAX_FOLLOWERS, merge
from tests.control.conftest import World, app_image

pytestmark = pytest.mark.anyio

APP_1 = "localhost:5000/team/app:1"
APP_2 = "localhost:5000/team/app:2"
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


# -- the pure parts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10m", timedelta(minutes=10)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2d", timedelta(days=2)),
        ("45s", timedelta(seconds=45)),
        ("2026-12-02T09:00:00Z", NOW),
        ("2026-12-02T10:00:00+01:00", NOW),
        ("2026-12-02T09:00:00", NOW),  # no zone: UTC
        (" 10m ", timedelta(minutes=10)),
    ],
)
def test_since_is_a_duration_or_a_time(text: str, expected: datetime | timedelta) -> None:
    assert parse_since(text) == expected


@pytest.mark.parametrize(
    "text", ["", "yesterday", "10", "10 m", "m10", "-5m", "999999999d999999999d"]
)
def test_a_since_that_means_nothing_is_refused(text: str) -> None:
    with pytest.raises(InvalidLogQuery):
        parse_since(text)


def test_a_query_is_resolved_against_the_clock_and_the_services_creation() -> None:
    created = NOW - timedelta(hours=1)
    assert LogQuery(since=timedelta(minutes=10)).resolved(NOW, created).start == NOW - timedelta(
        minutes=10
    )
    assert LogQuery(since=timedelta(days=1)).resolved(NOW, created).start == created
    assert LogQuery().resolved(NOW, created).start == created
    assert LogQuery(since=timedelta(days=999_999_999)).resolved(NOW, created).start == created
    with pytest.raises(InvalidLogQuery):
        LogQuery(limit=MAX_LOG_LINES + 1)


def entry(seconds: int, instance: str = "app-1-aaaaaa", source: str = "application") -> LogEntry:
    stream = "stdout" if source == "application" else "operation"
    return LogEntry(NOW + timedelta(seconds=seconds), source, stream, instance, 1, f"t{seconds}")


def test_merge_orders_filters_and_keeps_the_last_lines() -> None:
    groups = [
        [entry(1), entry(4)],
        [entry(2, "app-1-bbbbbb"), entry(3, "app-1-bbbbbb")],
        [entry(0, "", "events")],
    ]
    query = LogQuery(since=NOW, limit=3, source=LogSource.ALL)

    assert [e.text for e in merge(query, *groups)] == ["t2", "t3", "t4"]
    assert [e.text for e in merge(LogQuery(since=NOW, limit=0), *groups)] == []
    only_b = LogQuery(since=NOW, instance="app-1-bbbbbb")
    assert [e.text for e in merge(only_b, *groups)] == ["t2", "t3"]
    events = LogQuery(since=NOW, source=LogSource.EVENTS)
    assert [e.text for e in merge(events, *groups)] == ["t0"]
    later = LogQuery(since=NOW + timedelta(seconds=3))
    assert [e.text for e in merge(later, *groups)] == ["t3", "t4"]


# -- over the reconciler, the fake engine and the keeper --------------------------------------


async def create_app(world: World, **fields: object) -> str:
    """The service `app`; the name of its first instance."""
    _, op = world.services.create(SpecChange({"name": "app", "image": APP_1, **fields}))
    await world.settle(world.done(op.id))
    assert world.status(op.id) == "SUCCEEDED", world.services.operation(op.id).log
    first = min(world.containers(running=True), key=lambda c: c.labels["baepo.instance"])
    return str(first.labels["baepo.instance"])


def texts(entries: list[LogEntry]) -> list[str]:
    return [e.text for e in entries]


async def test_a_crashed_instances_last_lines_are_read_after_it_is_gone(world: World) -> None:
    old = await create_app(world)
    (container,) = world.containers(running=True)
    world.clock.advance(1)
    world.engine.write(container.id, "warning: cheese low", stream="stderr")
    world.clock.advance(1)
    world.engine.crash(container.id, exit_code=3, log="fatal: out of cheese")
    await world.settle(lambda: len(world.containers()) == 1 and world.containers()[0].running)
    (replacement,) = world.containers()
    assert replacement.id != container.id  # the crashed one's container is gone

    logs = world.services.logs("app", LogQuery())

    assert [(e.instance, e.stream, e.text) for e in logs] == [
        (old, "stdout", "app 1 listening on :8080"),
        (old, "stderr", "warning: cheese low"),
        (old, "stdout", "fatal: out of cheese"),
        (replacement.labels["baepo.instance"], "stdout", "app 1 listening on :8080"),
    ]
    assert {e.revision for e in logs} == {1}
    assert all(e.source == "application" for e in logs)
    assert [e.at for e in logs] == sorted(e.at for e in logs)


async def test_a_replaced_revisions_lines_are_kept_and_filtered(world: World) -> None:
    old = await create_app(world)
    world.clock.advance(1)
    op = world.services.deploy("app", image=APP_2)
    await world.settle(lambda: world.done(op.id)() and len(world.containers()) == 1)
    (new,) = world.containers()
    new_name = new.labels["baepo.instance"]

    assert texts(world.services.logs("app", LogQuery())) == [
        "app 1 listening on :8080",
        "app 2 listening on :8080",
    ]
    assert texts(world.services.logs("app", LogQuery(revision=1))) == ["app 1 listening on :8080"]
    assert texts(world.services.logs("app", LogQuery(instance=new_name))) == [
        "app 2 listening on :8080"
    ]
    assert [e.instance for e in world.services.logs("app", LogQuery(instance=old))] == [old]
    assert world.services.logs("app", LogQuery(limit=1))[0].instance == new_name
    recent = LogQuery(since=timedelta(seconds=0))
    assert world.services.logs("app", recent) == []


async def test_the_event_log_holds_the_operations_and_the_crashes(world: World) -> None:
    old = await create_app(world)
    (container,) = world.containers()
    world.clock.advance(1)
    world.engine.crash(container.id, exit_code=139)
    await world.settle(
        lambda: (
            any(c.running for c in world.containers())
            and not any(c.id == container.id for c in world.containers())
        )
    )

    events = world.services.logs("app", LogQuery(source=LogSource.EVENTS))
    lines = texts(events)
    assert "CREATE_SERVICE requested" in lines
    assert any(f"started instance {old} of revision 1" == line for line in lines)
    crashed = [e for e in events if e.stream == "crashed"]
    assert [(e.instance, e.revision) for e in crashed] == [(old, 1)]
    assert "exited with code 139" in crashed[0].text
    operations = {e.operation for e in events if e.stream == "operation"}
    assert len(operations) == 1 and None not in operations
    assert [e.at for e in events] == sorted(e.at for e in events)

    both = world.services.logs("app", LogQuery(source=LogSource.ALL))
    assert {e.source for e in both} == {"application", "events"}
    assert [e.at for e in both] == sorted(e.at for e in both)
    about_old = world.services.logs("app", LogQuery(source=LogSource.ALL, instance=old))
    assert {e.instance for e in about_old} == {old}
    assert {e.stream for e in about_old} >= {"stdout", "crashed"}


async def test_a_new_service_of_the_same_name_does_not_read_the_old_ones_lines(
    world: World,
) -> None:
    await create_app(world)
    world.clock.advance(1)
    await world.settle(world.done(world.services.delete("app").id))
    assert world.containers() == []
    world.clock.advance(1)
    await create_app(world)

    lines = world.services.logs("app", LogQuery(source=LogSource.ALL))

    assert texts([e for e in lines if e.source == "application"]) == ["app 1 listening on :8080"]
    assert "DELETE_SERVICE requested" not in texts(lines)


async def test_the_kept_logs_of_a_deleted_service_are_deleted(world: World) -> None:
    await create_app(world)
    world.clock.advance(1)
    await world.settle(world.done(world.services.delete("app").id))
    assert (world.keeper.root / "app").exists()  # its instances were kept as they stopped

    world.clock.advance(20)  # the reconciler's sweep
    await world.reconciler.tick()

    assert not (world.keeper.root / "app").exists()
    with pytest.raises(ServiceNotFound):
        world.services.logs("app", LogQuery())


async def test_an_engine_that_is_down_leaves_the_kept_lines(world: World) -> None:
    await create_app(world)
    (container,) = world.containers()
    world.engine.crash(container.id, log="bye")
    await world.settle(lambda: container.id not in {c.id for c in world.containers()})
    world.engine.set_available(False)

    assert texts(world.services.logs("app", LogQuery())) == ["app 1 listening on :8080", "bye"]


async def test_logs_are_a_read_of_the_service(world: World) -> None:
    await create_app(world)  # owned by admin

    with pytest.raises(ServiceNotFound):  # as if it did not exist, as describe answers
        world.services.logs("app", LogQuery(), caller=Caller("bob", frozenset({"bob"})))
    owner = Caller("admin", frozenset({"admin"}))
    assert texts(world.services.logs("app", LogQuery(), caller=owner)) == [
        "app 1 listening on :8080"
    ]


# -- following --------------------------------------------------------------------------------


def polled(
    follower: LogFollower, until: Callable[[list[LogEntry]], bool], timeout_s: float = 10
) -> list[LogEntry]:
    """Poll until `until(everything so far)`; what came."""
    found: list[LogEntry] = []
    deadline = time.monotonic() + timeout_s
    while not until(found):
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {texts(found)}"
        found += follower.poll(0.2)
    return found


async def test_a_follow_gets_new_lines_and_new_instances(world: World) -> None:
    old = await create_app(world)
    (container,) = world.containers()
    follower = world.services.follow_logs("app", LogQuery(source=LogSource.ALL))
    try:
        assert "app 1 listening on :8080" in texts(follower.backlog)
        world.clock.advance(1)
        world.engine.write(container.id, "request 1")
        world.engine.write(container.id, "oops", stream="stderr")
        got = polled(follower, lambda found: "oops" in texts(found))
        assert [(e.instance, e.text) for e in got if e.source == "application"] == [
            (old, "request 1"),
            (old, "oops"),
        ]

        world.clock.advance(1)
        world.engine.crash(container.id, log="fatal")
        await world.settle(lambda: any(c.running for c in world.containers()))
        (replacement,) = [c for c in world.containers() if c.running]
        # The crash, the event, and the new instance from its first line.
        got = polled(
            follower,
            lambda found: (
                "app 1 listening on :8080" in texts(found)
                and any(e.stream == "crashed" for e in found)
            ),
        )
        assert "fatal" in texts(got)
        first = [e for e in got if e.text == "app 1 listening on :8080"]
        assert [e.instance for e in first] == [replacement.labels["baepo.instance"]]
        assert texts(got).count("request 1") == 0  # nothing twice
    finally:
        follower.close()
    follower.close()  # twice is fine
    assert follower.poll(0.01) == []


async def test_a_follow_gets_lines_stamped_with_the_backlogs_last_time(world: World) -> None:
    """Lines with the same time as the backlog's last (an engine stamping to the second) are
    new unless the backlog has them: nothing twice, nothing lost."""
    await create_app(world)
    (container,) = world.containers()
    world.clock.advance(1)
    world.engine.write(container.id, "tick")
    follower = world.services.follow_logs("app", LogQuery())
    try:
        assert texts(follower.backlog)[-1] == "tick"
        world.engine.write(container.id, "tick")  # the clock did not move
        world.engine.write(container.id, "tock")
        got = polled(follower, lambda found: "tock" in texts(found))
        assert texts(got) == ["tick", "tock"]
    finally:
        follower.close()


async def test_a_follow_of_one_instance_sees_no_other(world: World) -> None:
    await create_app(world, min_instances=2)
    one, two = world.containers()
    name = one.labels["baepo.instance"]
    follower = world.services.follow_logs("app", LogQuery(instance=name, limit=0))
    try:
        assert follower.backlog == []
        world.clock.advance(1)
        world.engine.write(two.id, "from two")
        world.engine.write(one.id, "from one")
        got = polled(follower, lambda found: bool(found))
        assert [(e.instance, e.text) for e in got] == [(name, "from one")]
    finally:
        follower.close()


async def test_follows_are_bounded(world: World) -> None:
    await create_app(world)
    query = LogQuery(source=LogSource.EVENTS)
    followers = [world.services.follow_logs("app", query) for _ in range(MAX_FOLLOWERS)]
    try:
        with pytest.raises(TooManyFollowers):
            world.services.follow_logs("app", query)
        followers.pop().close()
        followers.append(world.services.follow_logs("app", query))
    finally:
        for follower in followers:
            follower.close()
    world.services.follow_logs("app", query).close()
    with pytest.raises(ServiceNotFound):  # a refused follow holds no place
        world.services.follow_logs("nope", query)
    world.services.follow_logs("app", query).close()


async def test_a_followed_event_log_gets_new_operations(world: World) -> None:
    await create_app(world)
    follower = world.services.follow_logs("app", LogQuery(source=LogSource.EVENTS))
    try:
        seen = len(follower.backlog)
        assert seen > 0
        world.clock.advance(1)
        op = world.services.deploy("app", image=APP_2)
        await world.settle(world.done(op.id))
        got = polled(follower, lambda found: any("SUCCEEDED" in e.text for e in found))
        assert "START_DEPLOYMENT requested" in texts(got)
        assert not set(texts(got)) & {"CREATE_SERVICE requested"}  # nothing twice
        assert all(e.source == "events" for e in got)
    finally:
        follower.close()


def test_images_used_here_print_a_first_line() -> None:
    assert app_image("1").logs == ["app 1 listening on :8080"]
