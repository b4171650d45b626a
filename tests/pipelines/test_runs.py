"""The runs' state machine and queue, over a runner the test drives (no engine, no sleeps:
conditions are polled with a deadline)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from baepo.control import SYSTEM, ServiceNotFound
from baepo.pipelines.errors import RunFinished, RunNotFound, SourceMissing
from baepo.pipelines.run_logs import RunLog
from baepo.pipelines.runs import Outcome, RunStatus, RunView, Waiting, choose
from baepo.pipelines.tables import RunRow
from tests.pipelines.world import ALICE, BOB, GatedRunner, RunsWorld, world
from tests.runtime.waiting import eventually


@pytest.fixture
def runner() -> GatedRunner:
    return GatedRunner()


@pytest.fixture
def w(tmp_path: Path, runner: GatedRunner) -> Iterator[RunsWorld]:
    made = world(tmp_path, runner)
    made.runs.start()
    yield made
    for commit in list(runner.started):
        runner.open(commit)  # let the threads end
    made.db.dispose()


def status(w: RunsWorld, run: RunView) -> str:
    return w.runs.get(run.id, caller=SYSTEM).status


def reaches(w: RunsWorld, run: RunView, wanted: RunStatus) -> RunView:
    def probe() -> RunView | None:
        now = w.runs.get(run.id, caller=SYSTEM)
        return now if now.status == wanted else None

    return eventually(probe, 10, f"run {run.number} of {run.service} {wanted}")


def started(runner: GatedRunner, *commits: str) -> None:
    eventually(lambda: set(commits) <= set(runner.started) or None, 10, f"{commits} started")


@pytest.mark.parametrize(
    ("queued", "busy", "free", "chosen"),
    [
        ([], set(), 2, []),
        ([("1", "a"), ("2", "a"), ("3", "b")], set(), 2, ["1", "3"]),
        ([("1", "a"), ("2", "a"), ("3", "b")], {"a"}, 2, ["3"]),
        ([("1", "a"), ("2", "b"), ("3", "c")], set(), 2, ["1", "2"]),
        ([("1", "a"), ("2", "b")], {"c"}, 0, []),
        ([("1", "a"), ("2", "a")], {"b"}, 1, ["1"]),
    ],
)
def test_the_queue_starts_the_oldest_run_of_each_idle_service(
    queued: list[tuple[str, str]], busy: set[str], free: int, chosen: list[str]
) -> None:
    assert choose([Waiting(i, s) for i, s in queued], busy, free) == chosen


def test_one_run_per_service_at_a_time_in_order_and_services_side_by_side_bounded(
    w: RunsWorld, runner: GatedRunner
) -> None:
    a1 = w.submit("a1", branch="main")
    a2 = w.submit("a2", branch="feature")
    a3 = w.submit("a3", branch="fix")
    b1 = w.submit("b1", service="web")
    c1 = w.submit("c1", service="api")
    started(runner, "a1", "b1")
    assert runner.started == ["a1", "b1"]  # two workers: api waits, and so do a2 and a3
    assert [status(w, r) for r in (a1, a2, a3, b1, c1)] == [
        "RUNNING",
        "QUEUED",
        "QUEUED",
        "RUNNING",
        "QUEUED",
    ]
    runner.open("a1")
    started(runner, "a2")
    assert runner.started == ["a1", "b1", "a2"]  # a2 is older than c1
    assert reaches(w, a1, RunStatus.SUCCEEDED).message == "all good"
    runner.open("b1")
    started(runner, "c1")
    runner.open("a2")
    started(runner, "a3")
    runner.open("a3")
    runner.open("c1")
    for run in (a2, a3, b1, c1):
        reaches(w, run, RunStatus.SUCCEEDED)
    assert [r.number for r in w.runs.list("app", caller=ALICE)] == [3, 2, 1]
    assert runner.started == ["a1", "b1", "a2", "c1", "a3"]


def test_a_newer_push_to_a_branch_supersedes_the_runs_that_wait(
    w: RunsWorld, runner: GatedRunner
) -> None:
    first = w.submit("c1")
    started(runner, "c1")
    waiting = w.submit("c2")
    other_branch = w.submit("x1", branch="feature")
    follower = w.runs.follow(waiting.id, caller=ALICE)
    newest = w.submit("c3")
    gone = w.runs.get(waiting.id, caller=ALICE)
    assert gone.status == "SUPERSEDED" and gone.done
    assert gone.message == f"superseded by run #{newest.number}"
    assert list(follower)[-1] == "-----> SUPERSEDED by run #4 (c3)"
    assert follower.run.status == "SUPERSEDED"
    assert status(w, other_branch) == "QUEUED"  # another branch is not superseded
    runner.open("c1")
    reaches(w, first, RunStatus.SUCCEEDED)
    started(runner, "x1")
    runner.open("x1")
    started(runner, "c3")
    runner.open("c3")
    reaches(w, newest, RunStatus.SUCCEEDED)
    assert "c2" not in runner.started


def test_cancel_a_waiting_run_ends_it_and_a_running_one_stops_it(
    w: RunsWorld, runner: GatedRunner
) -> None:
    running = w.submit("r1")
    started(runner, "r1")
    waiting = w.submit("r2", branch="feature")
    cancelled = w.runs.cancel(waiting.id, caller=ALICE)
    assert cancelled.status == "CANCELLED" and cancelled.message == "cancelled by alice"

    asked = w.runs.cancel(running.id, caller=ALICE)
    assert asked.status == "RUNNING"  # until the runner has stopped
    ended = reaches(w, running, RunStatus.CANCELLED)
    assert ended.message == "cancelled by alice"
    assert [s.status for s in ended.steps] == ["CANCELLED"]
    assert "r2" not in runner.started
    with pytest.raises(RunFinished):
        w.runs.cancel(running.id, caller=ALICE)
    log = w.runs.log_path(running.id, caller=ALICE).read_text().splitlines()
    assert "-----> cancel requested by alice" in log
    assert log[-1].startswith("-----> CANCELLED in ")


def test_a_failed_run_and_a_runner_that_breaks(w: RunsWorld, runner: GatedRunner) -> None:
    runner.outcomes["bad"] = Outcome(RunStatus.FAILED, "step test failed (exit code 1)")
    runner.raises["bug"] = RuntimeError("oops")
    bad, bug = w.submit("bad"), w.submit("bug", service="web")
    runner.open("bad")
    runner.open("bug")
    failed = reaches(w, bad, RunStatus.FAILED)
    assert failed.message == "step test failed (exit code 1)"
    assert [(s.name, s.status) for s in failed.steps] == [("work", "FAILED")]
    assert failed.started_at is not None and failed.ended_at is not None
    assert reaches(w, bug, RunStatus.FAILED).message == "internal error: oops"
    after = w.submit("after", service="web")  # the queue goes on
    runner.open("after")
    reaches(w, after, RunStatus.SUCCEEDED)


def test_rerun_runs_the_same_source_again(w: RunsWorld, runner: GatedRunner) -> None:
    first = w.submit("c1", files={"app.py": "print('v1')"})
    runner.open("c1")
    reaches(w, first, RunStatus.SUCCEEDED)
    again = w.runs.rerun(first.id, caller=ALICE)
    assert (again.number, again.commit, again.branch) == (2, "c1", "main")
    assert again.rerun_of == first.id and again.trigger == "rerun"
    assert (w.root / "sources" / f"{again.id}.tar").read_bytes() == (
        w.root / "sources" / f"{first.id}.tar"
    ).read_bytes()
    reaches(w, again, RunStatus.SUCCEEDED)
    (w.root / "sources" / f"{first.id}.tar").unlink()
    with pytest.raises(SourceMissing):
        w.runs.rerun(first.id, caller=ALICE)


def test_runs_are_seen_by_whoever_reaches_their_service(w: RunsWorld, runner: GatedRunner) -> None:
    mine = w.submit("c1")
    with pytest.raises(RunNotFound):
        w.runs.get(mine.id, caller=BOB)
    with pytest.raises(RunNotFound):
        w.runs.cancel(mine.id, caller=BOB)
    with pytest.raises(RunNotFound):
        w.runs.follow(mine.id, caller=BOB)
    assert w.runs.list(caller=BOB) == []
    assert w.runs.list("app", caller=BOB) == []
    assert [r.id for r in w.runs.list(caller=ALICE)] == [mine.id]
    assert [r.id for r in w.runs.list(caller=SYSTEM)] == [mine.id]
    with pytest.raises(ServiceNotFound):
        w.submit("c2", service="other")  # bob's
    with pytest.raises(ServiceNotFound):
        w.submit("c2", service="nope")


def test_a_follower_gets_the_log_so_far_then_live_lines_then_ends(
    w: RunsWorld, runner: GatedRunner
) -> None:
    run = w.submit("c1")
    started(runner, "c1")
    eventually(lambda: status(w, run) == "RUNNING" or None)
    follower = w.runs.follow(run.id, caller=ALICE)
    late = w.runs.follow(run.id, caller=ALICE, from_start=False)
    got = follower.poll(5)
    assert got == ["-----> run #1 of app: main c1 (push)", "working on c1"]
    assert follower.poll(0) == [] and not follower.done
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(follower))
    reader.start()
    runner.open("c1")
    reader.join(10)
    assert not reader.is_alive()
    assert lines[0] == "done with c1"
    assert lines[1].startswith("-----> SUCCEEDED in ") and lines[1].endswith(": all good")
    assert follower.done and follower.run.status == "SUCCEEDED"
    assert list(late) == lines  # from where the log was when it began
    whole = w.runs.follow(run.id, caller=ALICE)  # after the end: the whole log, then the end
    assert list(whole) == got + lines


def test_a_follower_closed_from_another_thread_stops_waiting(
    w: RunsWorld, runner: GatedRunner
) -> None:
    run = w.submit("c1")
    started(runner, "c1")
    follower = w.runs.follow(run.id, caller=ALICE)
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(follower))
    reader.start()
    follower.close()
    reader.join(10)
    assert not reader.is_alive()


def test_a_restart_fails_the_runs_it_cut_short_and_runs_the_waiting_ones(
    tmp_path: Path, runner: GatedRunner
) -> None:
    w = world(tmp_path, runner, workers=1)  # not started: what a process left in the database
    cut, waiting = w.submit("cut"), w.submit("wait", service="web")
    with w.db.session() as s, s.begin():
        row = s.get(RunRow, cut.id)
        assert row is not None
        row.status = "RUNNING"
        row.steps = [{"name": "test", "status": "RUNNING", "exit_code": None, "ended_at": None}]
    left = w.root / "work" / cut.id / "src"
    left.mkdir(parents=True)
    w.runs.start()
    assert not left.parent.exists()  # its workspace is gone
    failed = w.runs.get(cut.id, caller=ALICE)
    assert failed.status == "FAILED" and failed.message == "Baepo restarted while the run executed"
    assert [s.status for s in failed.steps] == ["FAILED"]
    assert runner.abandoned == [cut.id]
    started(runner, "wait")
    runner.open("wait")
    reaches(w, waiting, RunStatus.SUCCEEDED)
    log = (w.root / "logs" / f"{cut.id}.log").read_text().splitlines()
    assert log[-1] == "-----> FAILED: Baepo restarted while the run executed"
    assert runner.started == ["wait"]
    w.db.dispose()


def test_secrets_are_masked_line_by_line(tmp_path: Path) -> None:
    log = RunLog(tmp_path / "run.log")
    log.write("before: hunter22")
    log.mask(["hunter22", "abc", "line-one\nline-two"])
    log.write("the password is hunter22, again hunter22")
    log.write("abc stays: too short to be a secret")
    log.write("a key:\nline-one\nline-two")
    log.end()
    assert (tmp_path / "run.log").read_text().splitlines() == [
        "before: hunter22",  # written before it was known
        "the password is ***, again ***",
        "abc stays: too short to be a secret",
        "a key:",
        "***",
        "***",
    ]


def test_a_log_past_its_bound_is_cut_and_the_run_goes_on(tmp_path: Path) -> None:
    log = RunLog(tmp_path / "run.log", limit=100)
    for n in range(20):
        log.write(f"line {n:02d}")
    log.stage("the end")
    log.end()
    lines = (tmp_path / "run.log").read_text().splitlines()
    assert lines[:3] == ["line 00", "line 01", "line 02"]
    assert lines[-1] == "-----> … log truncated at 100 bytes: the rest is dropped"
    assert "the end" not in "".join(lines)
