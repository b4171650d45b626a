"""The internal push endpoint, in process: its checks before a run, and its streamed answer."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from baepo.api.git import PUSHES_PATH, git_routes
from baepo.control import Caller
from baepo.pipelines.git_http import BackendLimits
from baepo.pipelines.git_remote import GitRepositories
from baepo.pipelines.hook import RESULT_MARK, Result
from baepo.pipelines.pushes import PushTickets, Ticket, branch_filter
from tests.pipelines.git_world import FakeFollower, FakeRuns, Script, parse_stand_in

ALICE = Caller("alice", frozenset({"alice"}))
COMMIT = "a" * 40


class BrokenRuns(FakeRuns):
    """A store that fails half-way."""

    def follow(self, run_id: str, *, caller: Caller, from_start: bool = True) -> FakeFollower:
        raise RuntimeError("the log file is gone")


def tar_of(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


class Endpoint:
    def __init__(self, tmp_path: Path, runs: FakeRuns) -> None:
        self.tickets = PushTickets()
        self.spool = tmp_path / "spool"
        app = FastAPI()
        app.router.routes.extend(
            git_routes(
                None,  # type: ignore[arg-type]  # the push endpoint never signs anyone in
                lambda name, caller: None,
                GitRepositories(tmp_path / "git"),
                runs,
                branch_filter(lambda service: "main", parse_stand_in),
                spool=self.spool,
                limits=BackendLimits(max_request_bytes=64 * 1024),
                tickets=self.tickets,
            )
        )
        self.client = TestClient(app)
        self.ticket = self.tickets.issue("app", ALICE)

    def post(
        self, body: bytes, ticket: Ticket | None = None, params: dict[str, str] | None = None
    ) -> tuple[int, list[str]]:
        """The status and the lines (split at newlines only: `str.splitlines` would split at
        the result mark too, an ASCII record separator)."""
        ticket = ticket or self.ticket
        answer = self.client.post(
            f"{PUSHES_PATH}/{ticket.id}",
            params={"branch": "main", "commit": COMMIT, **(params or {})},
            headers={"Authorization": f"Bearer {ticket.secret}"},
            content=body,
        )
        return answer.status_code, answer.text.removesuffix("\n").split("\n")


@pytest.fixture
def runs() -> FakeRuns:
    return FakeRuns()


@pytest.fixture
def endpoint(tmp_path: Path, runs: FakeRuns) -> Endpoint:
    return Endpoint(tmp_path, runs)


def test_the_answer_is_the_run_log_then_the_result(endpoint: Endpoint, runs: FakeRuns) -> None:
    runs.scripts["main"] = Script(["one", "two"])
    status, lines = endpoint.post(tar_of({"app.py": b"v1"}))
    assert status == 200
    assert lines[1:3] == ["one", "two"]
    assert Result.parse(lines[-1]) == Result(True, "SUCCEEDED", "", "run1", 1)
    assert runs.runs[0].caller == ALICE and runs.runs[0].commit == COMMIT
    assert list(endpoint.spool.iterdir()) == []


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"commit": "abc"}, 400),
        ({"commit": "A" * 40}, 400),
        ({"branch": ""}, 400),
        ({"branch": "x\n"}, 400),
        ({"branch": "b" * 256}, 400),
    ],
)
def test_a_branch_and_a_full_commit_are_required(
    endpoint: Endpoint, runs: FakeRuns, params: dict[str, str], status: int
) -> None:
    assert endpoint.post(tar_of({}), params=params)[0] == status
    assert runs.runs == []


def test_only_a_live_push_with_its_secret_may_post(endpoint: Endpoint, runs: FakeRuns) -> None:
    forged = Ticket(endpoint.ticket.id, "guessed", "app", ALICE)
    assert endpoint.post(tar_of({}), forged)[0] == 401
    endpoint.tickets.revoke(endpoint.ticket.id)
    assert endpoint.post(tar_of({}))[0] == 401
    assert runs.runs == []


def test_a_tree_over_the_bound_is_refused(endpoint: Endpoint, runs: FakeRuns) -> None:
    status, lines = endpoint.post(tar_of({"big": b"x" * 100_000}))
    assert status == 413 and "larger than 65536 bytes" in lines[0]
    assert runs.runs == [] and list(endpoint.spool.iterdir()) == []


def test_a_store_that_fails_half_way_fails_the_push(tmp_path: Path) -> None:
    endpoint = Endpoint(tmp_path, BrokenRuns())
    status, lines = endpoint.post(tar_of({}))
    assert status == 200
    assert lines[-1].startswith(RESULT_MARK)
    assert Result.parse(lines[-1]) == Result(False, "ERROR", "Baepo failed: see its log")
