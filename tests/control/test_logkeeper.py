"""The log keeper: a gone instance's output is kept, once, within the service's bounds."""

from __future__ import annotations

import json
import queue
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from baepo.clock import FakeClock
from baepo.control import LogKeeper, LogLimits
from baepo.control.logkeeper import MAX_LINE, SEGMENTS
from baepo.runtime import ContainerSpec, EngineEvent
from tests.fakes.engine import FakeImage, MemoryEngine

SERVICE_LABELS = {"baepo.service": "app", "baepo.revision": "2", "baepo.instance": "app-2-abcdef"}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def engine(clock: FakeClock) -> Iterator[MemoryEngine]:
    engine = MemoryEngine(clock, images=[FakeImage(ref="app:1", logs=["booting"])])
    yield engine
    engine.close()


def run(engine: MemoryEngine, instance: str = "app-2-abcdef") -> str:
    labels = {**SERVICE_LABELS, "baepo.instance": instance}
    return engine.run(ContainerSpec(image="app:1", name=instance, labels=labels)).id


def files(root: Path, service: str = "app") -> list[Path]:
    return sorted((root / service).iterdir())


def test_a_capture_keeps_each_line_with_its_instance_once(
    tmp_path: Path, engine: MemoryEngine, clock: FakeClock
) -> None:
    keeper = LogKeeper(tmp_path / "logs", engine)
    container = run(engine)
    clock.advance(1)
    engine.write(container, "oops", stream="stderr")
    clock.advance(1)
    engine.crash(container, exit_code=3, log="fatal: out of cheese")

    assert keeper.capture(container, "app", "app-2-abcdef") == 3
    assert keeper.capture(container, "app", "app-2-abcdef") == 0  # asked again: nothing new

    kept = keeper.kept("app")
    assert [(k.instance, k.revision, k.stream, k.text) for k in kept] == [
        ("app-2-abcdef", 2, "stdout", "booting"),
        ("app-2-abcdef", 2, "stderr", "oops"),
        ("app-2-abcdef", 2, "stdout", "fatal: out of cheese"),
    ]
    assert kept[2].at == clock.now()
    assert keeper.kept_until("app") == {"app-2-abcdef": clock.now()}
    assert [k.text for k in keeper.kept("app", since=clock.now())] == ["fatal: out of cheese"]


def test_lines_stamped_with_the_same_time_are_each_kept_once(
    tmp_path: Path, engine: MemoryEngine
) -> None:
    """An engine may stamp lines to the second only (Podman): lines written after a copy
    can carry the time of the last line it kept, and are new all the same."""
    keeper = LogKeeper(tmp_path / "logs", engine)
    container = run(engine)  # the clock does not move: every line has the same time
    engine.write(container, "same")
    assert keeper.capture(container, "app", "app-2-abcdef") == 2

    engine.write(container, "same")  # the same text and time as a kept line: still new
    engine.write(container, "later")
    assert keeper.capture(container, "app", "app-2-abcdef") == 2
    assert keeper.capture(container, "app", "app-2-abcdef") == 0
    again = LogKeeper(tmp_path / "logs", engine)  # after a restart, from the files
    assert again.capture(container, "app", "app-2-abcdef") == 0
    engine.write(container, "last")
    assert again.capture(container, "app", "app-2-abcdef") == 1

    assert [k.text for k in again.kept("app")] == ["booting", "same", "same", "later", "last"]


def test_files_are_the_owners_only(tmp_path: Path, engine: MemoryEngine) -> None:
    keeper = LogKeeper(tmp_path / "logs", engine)
    keeper.capture(run(engine), "app", "app-2-abcdef")

    assert stat.S_IMODE((tmp_path / "logs").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "logs" / "app").stat().st_mode) == 0o700
    [segment] = files(tmp_path / "logs")
    assert stat.S_IMODE(segment.stat().st_mode) == 0o600
    record = json.loads(segment.read_text().splitlines()[0])
    assert record["instance"] == "app-2-abcdef" and record["text"] == "booting"


def test_a_restarted_keeper_does_not_copy_a_line_twice(
    tmp_path: Path, engine: MemoryEngine, clock: FakeClock
) -> None:
    container = run(engine)
    LogKeeper(tmp_path / "logs", engine).capture(container, "app", "app-2-abcdef")
    clock.advance(1)
    engine.write(container, "after the first copy")

    again = LogKeeper(tmp_path / "logs", engine)  # Baepo restarted: nothing in memory
    assert again.capture(container, "app", "app-2-abcdef") == 1
    assert [k.text for k in again.kept("app")] == ["booting", "after the first copy"]


@pytest.mark.parametrize(
    ("limits", "line"),
    [
        (LogLimits(lines=100, bytes=10 * 1024 * 1024), "x"),  # lines come first
        (LogLimits(lines=100_000, bytes=64 * 1024), "y" * 200),  # bytes come first
    ],
)
def test_a_chatty_app_never_grows_the_kept_log_past_its_bounds(
    tmp_path: Path, engine: MemoryEngine, clock: FakeClock, limits: LogLimits, line: str
) -> None:
    keeper = LogKeeper(tmp_path / "logs", engine, limits)
    written = 0
    for round_ in range(30):
        container = run(engine, f"app-2-{round_:06x}")
        for _ in range(97):
            clock.advance(0.001)
            engine.write(container, f"{line} {written}")
            written += 1
        keeper.capture(container, "app", f"app-2-{round_:06x}")
        engine.remove(container)

        segments = files(tmp_path / "logs")
        assert len(segments) <= SEGMENTS
        on_disk = [raw for s in segments for raw in s.read_bytes().splitlines()]
        assert len(on_disk) <= limits.lines
        assert sum(s.stat().st_size for s in segments) <= limits.bytes

    kept = [k.text for k in keeper.kept("app")]
    chatter = [text for text in kept if text != "booting"]
    assert chatter[-1] == f"{line} {written - 1}"  # the newest are kept, in order
    assert chatter == sorted(chatter, key=lambda text: int(text.rsplit(" ", 1)[1]))
    per_line = len(json.dumps({"at": "", "instance": "", "text": kept[-1]})) + 60
    assert len(kept) >= min(limits.lines, limits.bytes // per_line) * 3 // 4 - 1
    # Instances whose lines all rotated away are forgotten.
    assert set(keeper.kept_until("app")) == {k.instance for k in keeper.kept("app")}


def test_a_line_is_cut_at_the_maximum(tmp_path: Path, engine: MemoryEngine) -> None:
    keeper = LogKeeper(tmp_path / "logs", engine)
    container = run(engine)
    engine.write(container, "z" * (MAX_LINE * 3))

    keeper.capture(container, "app", "app-2-abcdef")

    assert [len(k.text) for k in keeper.kept("app")] == [len("booting"), MAX_LINE]


def test_a_line_cut_short_by_a_crash_is_skipped(tmp_path: Path, engine: MemoryEngine) -> None:
    keeper = LogKeeper(tmp_path / "logs", engine)
    keeper.capture(run(engine), "app", "app-2-abcdef")
    [segment] = files(tmp_path / "logs")
    with segment.open("ab") as out:
        out.write(b'{"at": "2026-01-01T00:00:00+00:00", "instance": "app-2-ab')

    assert [k.text for k in LogKeeper(tmp_path / "logs", engine).kept("app")] == ["booting"]


def test_an_engine_that_fails_costs_only_the_copy(
    tmp_path: Path, engine: MemoryEngine, caplog: pytest.LogCaptureFixture
) -> None:
    keeper = LogKeeper(tmp_path / "logs", engine)
    container = run(engine)

    assert keeper.capture("0" * 64, "app", "app-2-ffffff") == 0  # removed already
    engine.set_available(False)
    assert keeper.capture(container, "app", "app-2-abcdef") == 0
    assert "cannot copy the output of app-2-abcdef" in caplog.text
    engine.set_available(True)
    assert keeper.capture(container, "app", "app-2-abcdef") == 1


def test_a_died_event_is_captured_from_its_labels(tmp_path: Path, engine: MemoryEngine) -> None:
    keeper = LogKeeper(tmp_path / "logs", engine)
    events = engine.events({"baepo.service": "app"})
    received: queue.Queue[EngineEvent] = queue.Queue()

    def pump() -> None:
        for event in events:
            received.put(event)

    threading.Thread(target=pump, daemon=True).start()
    container = run(engine)
    engine.crash(container, log="bye")

    seen = [received.get(timeout=5), received.get(timeout=5)]
    events.close()

    assert [keeper.capture_died(e) for e in seen] == [0, 2]  # start, then die
    assert [(k.instance, k.revision) for k in keeper.kept("app")] == [("app-2-abcdef", 2)] * 2


def test_retain_deletes_the_logs_of_gone_services(tmp_path: Path, engine: MemoryEngine) -> None:
    keeper = LogKeeper(tmp_path / "logs", engine)
    keeper.capture(run(engine, "app-2-000001"), "app", "app-2-000001")
    keeper.capture(run(engine, "web-1-000001"), "web", "web-1-000001")

    keeper.retain({"web"})

    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == ["web"]
    assert keeper.kept("app") == [] and keeper.kept_until("app") == {}
    assert len(keeper.kept("web")) == 1


def test_names_that_are_no_directory_are_refused(tmp_path: Path, engine: MemoryEngine) -> None:
    keeper = LogKeeper(tmp_path / "logs", engine)
    container = run(engine)
    for name in ("", "..", "../x", ".hidden"):
        assert keeper.capture(container, name, "app-2-abcdef") == 0
        assert keeper.kept(name) == []
    assert not (tmp_path / "logs").exists()


def test_limits_must_leave_room_for_every_segment() -> None:
    with pytest.raises(ValueError, match="at least"):
        LogLimits(lines=SEGMENTS - 1)
    assert LogLimits(lines=10_000).segment_lines == 10_000 // SEGMENTS


def test_copies_at_once_keep_each_line_once(tmp_path: Path, engine: MemoryEngine) -> None:
    """The engine's "died" event and the reconciler's removal may copy the same container at
    the same moment: both read the engine before either has written."""
    keeper = LogKeeper(tmp_path / "logs", engine)
    container = run(engine)
    engine.crash(container, log="bye")
    started = threading.Barrier(2)
    real_output = engine.output

    def output_together(instance_id: str, **kwargs: Any) -> Any:
        stream = real_output(instance_id, **kwargs)
        started.wait(timeout=5)  # both have asked before either writes
        return stream

    engine.output = output_together  # type: ignore[method-assign]  # a test's hook
    counts: list[int] = []
    copies = [
        threading.Thread(
            target=lambda: counts.append(keeper.capture(container, "app", "app-2-abcdef"))
        )
        for _ in range(2)
    ]
    for copy in copies:
        copy.start()
    for copy in copies:
        copy.join(timeout=10)

    assert sorted(counts) == [0, 2]
    assert [k.text for k in keeper.kept("app")] == ["booting", "bye"]
