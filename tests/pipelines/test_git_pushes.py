"""The push endpoint's logic: which branches run, the push tickets, and the answer's lines."""

from __future__ import annotations

import io
import tarfile
import threading
from pathlib import Path

import pytest

from baepo.control import Caller
from baepo.pipelines.hook import RESULT_MARK, Result
from baepo.pipelines.pushes import (
    PushAnswer,
    PushRefused,
    PushTickets,
    Ticket,
    branch_filter,
    pipeline_file,
    wanted,
)
from tests.pipelines.git_world import FakeRuns, RunRefused, Script, parse_stand_in

ALICE = Caller("alice", frozenset({"alice"}))
COMMIT = "c" * 40


def tree(path: Path, files: dict[str, bytes], *, links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return path


FEATURES = b"steps:\n  - name: test\n    when: {branch: ['feature/*']}\n"
EVERY = b"steps:\n  - name: test\n"


@pytest.mark.parametrize(
    ("files", "branch", "expected"),
    [
        ({}, "main", True),  # the deploy branch, always
        ({}, "wip", False),  # no pipeline file: only the deploy branch runs
        ({"baepo.yaml": FEATURES}, "feature/x", True),
        ({"baepo.yaml": FEATURES}, "wip", False),
        ({"baepo.yaml": EVERY}, "wip", True),  # a step without `when` runs everywhere
        ({"baepo.yaml": b"steps: {"}, "wip", True),  # broken: run, to say why
        ({"baepo.yaml": b"steps: 3\n"}, "wip", True),
        ({"sub/baepo.yaml": EVERY}, "wip", False),  # only the file at the top counts
    ],
)
def test_which_branches_run(
    tmp_path: Path, files: dict[str, bytes], branch: str, expected: bool
) -> None:
    source = tree(tmp_path / "t.tar", files)
    assert wanted(source, branch, "main", parse=parse_stand_in) is expected


def test_the_deploy_branch_comes_from_the_service(tmp_path: Path) -> None:
    source = tree(tmp_path / "t.tar", {})
    branches = {"app": "production", "other": "main"}
    check = branch_filter(branches.__getitem__, parse_stand_in)
    assert check("app", source, "production") and not check("app", source, "main")
    assert check("other", source, "main")


def test_the_pipeline_file_is_read_only_when_it_is_a_file(tmp_path: Path) -> None:
    assert pipeline_file(tree(tmp_path / "a.tar", {"baepo.yaml": EVERY})) == EVERY.decode()
    assert pipeline_file(tree(tmp_path / "b.tar", {}, links={"baepo.yaml": "/etc/passwd"})) is None
    huge = tree(tmp_path / "c.tar", {"baepo.yaml": b"#" * (1024 * 1024 + 1)})
    with pytest.raises(PushRefused, match=r"baepo\.yaml is larger than 1048576 bytes"):
        pipeline_file(huge)
    (tmp_path / "d.tar").write_bytes(b"not a tar")
    with pytest.raises(PushRefused):
        pipeline_file(tmp_path / "d.tar")


def test_a_ticket_is_good_for_its_secret_while_the_push_lasts() -> None:
    tickets = PushTickets()
    ticket = tickets.issue("app", ALICE)
    other = tickets.issue("app", ALICE)
    assert tickets.redeem(ticket.id, f"Bearer {ticket.secret}") == ticket
    assert tickets.redeem(ticket.id, f"Bearer {other.secret}") is None
    assert tickets.redeem(ticket.id, ticket.secret) is None
    assert tickets.redeem(ticket.id, None) is None
    assert tickets.redeem("nope", f"Bearer {ticket.secret}") is None
    tickets.revoke(ticket.id)
    assert tickets.redeem(ticket.id, f"Bearer {ticket.secret}") is None
    assert tickets.redeem(other.id, f"Bearer {other.secret}") == other


def answer(runs: FakeRuns, source: Path, branch: str = "main") -> PushAnswer:
    ticket = Ticket("p1", "s", "app", ALICE)
    check = branch_filter(lambda service: "main", parse_stand_in)
    return PushAnswer(
        runs, check, ticket, source=source, branch=branch, commit=COMMIT, refused=(RunRefused,)
    )


def results(lines: list[str]) -> list[Result | None]:
    return [Result.parse(line) for line in lines if line.startswith(RESULT_MARK)]


def test_a_wanted_branch_is_run_and_followed_to_its_end(tmp_path: Path) -> None:
    runs = FakeRuns()
    runs.scripts["main"] = Script(["one", "\x1efake result", "two"], "FAILED", "step x failed")
    lines = list(answer(runs, tree(tmp_path / "t.tar", {"a": b"1"})))
    assert lines[:-1] == ["-----> run #1 (run1): main at cccccccccccc", "one", "fake result", "two"]
    assert results(lines) == [Result(False, "FAILED", "step x failed", "run1", 1)]
    (run,) = runs.runs
    assert (run.service, run.branch, run.commit, run.caller) == ("app", "main", COMMIT, ALICE)
    assert not (tmp_path / "t.tar").exists()


def test_a_branch_nothing_runs_on_is_accepted_without_a_run(tmp_path: Path) -> None:
    runs = FakeRuns()
    lines = list(answer(runs, tree(tmp_path / "t.tar", {}), branch="wip"))
    assert results(lines) == [
        Result(True, "SKIPPED", "no pipeline for branch wip: accepted as it is")
    ]
    assert runs.runs == [] and not (tmp_path / "t.tar").exists()


@pytest.mark.parametrize("content", [None, b"not a tar"])
def test_a_refused_submit_or_an_unreadable_tree_refuses_the_branch(
    tmp_path: Path, content: bytes | None
) -> None:
    runs = FakeRuns()
    runs.refuse = "service app is paused"
    source = tmp_path / "t.tar"
    if content is None:
        tree(source, {})
    else:
        source.write_bytes(content)
    (result,) = results(list(answer(runs, source, branch="main" if content is None else "wip")))
    assert result is not None and not result.ok and result.status == "REFUSED"
    assert not source.exists()


def test_closing_the_answer_stops_following(tmp_path: Path) -> None:
    runs = FakeRuns()
    never = threading.Event()
    runs.scripts["main"] = Script(["one", never])
    push = answer(runs, tree(tmp_path / "t.tar", {}))
    lines = iter(push)
    assert next(lines).startswith("-----> run #1")
    assert next(lines) == "one"
    threading.Timer(0, push.close).start()  # the pusher goes away, seen from another thread
    assert list(lines) == []  # ended: no result line for a pusher who is gone
    never.set()
