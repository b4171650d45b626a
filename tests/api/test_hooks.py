"""`POST /api/v1/hooks/{provider}/{service}` with deliveries as the providers send them, a real
git server on loopback to fetch from, and a fake in place of the runs (which only records what
it was asked to queue): signed right and wrong, replays, pings, tags, deleted branches, a
repository that is not the service's, fetches that fail or take long."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from baepo.api import errors
from baepo.api.hooks import HookLimits, HookTarget, hooks_router
from baepo.clock import FakeClock
from baepo.pipelines.deliveries import Deliveries
from baepo.pipelines.webhooks import PushEvent
from baepo.schema import schema
from baepo.store import Database
from tests.pipelines.git_server import make_repository, serving
from tests.pipelines.test_fetch import files
from tests.pipelines.test_webhooks import (
    SECRET,
    push_payload,
    signed,
)

pytestmark = pytest.mark.integration  # the real git client fetches from a real server


@dataclass
class FakeRuns:
    """Stands in for `Runs.submit`: keeps what it was given, answers run ids."""

    queued: list[tuple[str, PushEvent, dict[str, str]]] = field(default_factory=list)
    nothing_for: set[str] = field(default_factory=set)
    gate: threading.Event | None = None

    def submit(self, service: str, event: PushEvent, source: Path) -> str | None:
        if self.gate is not None:
            assert self.gate.wait(30)
        if event.branch in self.nothing_for:
            return None
        self.queued.append((service, event, files(source)))
        return f"run{len(self.queued)}"


@dataclass
class World:
    client: TestClient
    runs: FakeRuns
    deliveries: Deliveries
    commits: list[str]
    git_url: str
    targets: dict[str, HookTarget]
    clock: FakeClock


@pytest.fixture(scope="module")
def git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[str]]]:
    root = tmp_path_factory.mktemp("git")
    commits = make_repository(root, "app", [{"app.py": "v1\n"}, {"app.py": "v2\n"}])
    with serving(root) as url:
        yield url, commits


def make_world(
    tmp_path: Path, git_server: tuple[str, list[str]], limits: HookLimits
) -> Iterator[World]:
    url, commits = git_server
    db = Database(f"sqlite:///{tmp_path / 'baepo.db'}")
    db.migrate(schema())
    clock = FakeClock()
    deliveries = Deliveries(db, clock)
    runs = FakeRuns()
    source = f"{url}/smart/app.git"
    targets = {
        "app": HookTarget(secret=SECRET, source_url=source),
        "no-secret": HookTarget(secret=None, source_url=source),
        "no-source": HookTarget(secret=SECRET, source_url=None),
        "elsewhere": HookTarget(secret=SECRET, source_url="https://github.com/bob/other"),
    }
    api = FastAPI()
    errors.install(api)
    (tmp_path / "work").mkdir()
    api.include_router(
        hooks_router(targets.get, runs.submit, deliveries, tmp_path / "work", limits)
    )
    with TestClient(api, base_url="http://127.0.0.1") as client:
        yield World(client, runs, deliveries, commits, url, targets, clock)
    db.dispose()


@pytest.fixture
def world(tmp_path: Path, git_server: tuple[str, list[str]]) -> Iterator[World]:
    yield from make_world(tmp_path, git_server, HookLimits(allow_private=True))


def payload_for(world: World, provider: str, commit: str, ref: str = "refs/heads/main") -> bytes:
    """A push event of `provider` naming the test's git server as the repository."""
    return push_payload(provider, f"{world.git_url}/smart/app", commit, ref)


def post(
    world: World, provider: str, service: str, body: bytes, headers: dict[str, str]
) -> httpx.Response:
    path = f"/api/v1/hooks/{provider}/{service}"
    answer: httpx.Response = world.client.post(path, content=body, headers=headers)
    return answer


@pytest.mark.parametrize("provider", ["github", "gitea", "gitlab"])
def test_a_push_signed_right_queues_a_run_of_the_fetched_commit(
    world: World, provider: str
) -> None:
    body = payload_for(world, provider, world.commits[0])
    answer = post(world, provider, "app", body, signed(provider, body))
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"status": "queued", "run": "run1"}
    [(service, event, files)] = world.runs.queued
    assert (service, event.branch, event.commit) == ("app", "main", world.commits[0])
    assert files == {"app.py": "v1\n"}  # the pushed commit, not the branch's newest
    assert world.deliveries.run_of(provider, event.delivery_id) == "run1"


def test_a_replayed_delivery_runs_once(world: World) -> None:
    body = payload_for(world, "github", world.commits[1])
    headers = signed("github", body)
    first = post(world, "github", "app", body, headers)
    again = post(world, "github", "app", body, headers)
    assert first.status_code == 202
    assert again.status_code == 200 and again.json() == {"status": "duplicate", "run": "run1"}
    assert len(world.runs.queued) == 1
    # Another delivery of the same commit (a new push event) is not a replay.
    other = {**headers, "X-GitHub-Delivery": "another-delivery"}
    assert post(world, "github", "app", body, other).json() == {"status": "queued", "run": "run2"}


def test_a_delivery_is_forgotten_after_a_week(world: World) -> None:
    body = payload_for(world, "github", world.commits[1])
    headers = signed("github", body)
    assert post(world, "github", "app", body, headers).status_code == 202
    world.clock.advance(8 * 24 * 3600)
    world.deliveries.prune()
    assert post(world, "github", "app", body, headers).status_code == 202
    assert len(world.runs.queued) == 2


@pytest.mark.parametrize(
    "case", ["wrong secret", "no signature", "unknown service", "service without secret"]
)
def test_rejected_deliveries_all_look_alike(world: World, case: str) -> None:
    body = payload_for(world, "github", world.commits[0])
    headers = signed("github", body, secret="wrong" if case == "wrong secret" else SECRET)
    if case == "no signature":
        del headers["X-Hub-Signature-256"]
    service = {"unknown service": "nope", "service without secret": "no-secret"}.get(case, "app")
    answer = post(world, "github", service, body, headers)
    assert answer.status_code == 401
    assert answer.json() == {
        "error": {"code": "WEBHOOK_REJECTED", "message": "the webhook's signature does not check"}
    }
    assert world.runs.queued == []


def test_a_body_changed_after_signing_is_rejected(world: World) -> None:
    body = payload_for(world, "gitea", world.commits[0])
    headers = signed("gitea", body)
    answer = post(world, "gitea", "app", body.replace(b"main", b"prod"), headers)
    assert answer.status_code == 401


@pytest.mark.parametrize(
    ("provider", "ref", "commit", "event", "reason"),
    [
        ("github", "refs/heads/main", None, "ping", "ping"),
        ("github", "refs/tags/v1", None, None, "refs/tags/v1 is not a branch"),
        ("github", "refs/heads/main", "0" * 40, None, "branch main was deleted"),
        ("gitlab", "refs/tags/v1", None, "Tag Push Hook", "runs nothing"),
        ("gitea", "refs/heads/main", "0" * 40, None, "branch main was deleted"),
    ],
)
def test_deliveries_that_run_nothing(
    world: World, provider: str, ref: str, commit: str | None, event: str | None, reason: str
) -> None:
    body = payload_for(world, provider, commit or world.commits[0], ref=ref)
    answer = post(world, provider, "app", body, signed(provider, body, event=event))
    assert answer.status_code == 200
    assert answer.json()["status"] == "ignored" and reason in answer.json()["reason"]
    assert world.runs.queued == []


def test_a_branch_the_pipeline_has_nothing_for(world: World) -> None:
    world.runs.nothing_for.add("feature")
    body = payload_for(world, "github", world.commits[0], ref="refs/heads/feature")
    answer = post(world, "github", "app", body, signed("github", body))
    assert answer.json() == {"status": "ignored", "reason": "no pipeline for branch feature"}


def test_a_push_to_another_repository_than_the_services_source(world: World) -> None:
    body = payload_for(world, "github", world.commits[0])
    answer = post(world, "github", "elsewhere", body, signed("github", body))
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "SOURCE_MISMATCH"
    assert world.runs.queued == []


def test_a_service_without_a_source_url(world: World) -> None:
    body = payload_for(world, "github", world.commits[0])
    answer = post(world, "github", "no-source", body, signed("github", body))
    assert answer.status_code == 409 and "--source-url" in answer.json()["error"]["message"]


def test_a_payload_that_is_no_push_event(world: World) -> None:
    body = b'{"ref": "refs/heads/main", "after": "nope"}'
    answer = post(world, "github", "app", body, signed("github", body))
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "INVALID_WEBHOOK"


def test_an_unknown_provider_and_a_huge_body(world: World) -> None:
    assert post(world, "bitbucket", "app", b"{}", {}).status_code == 404
    huge = b"x" * (10 * 1024 * 1024 + 1)
    assert post(world, "github", "app", huge, signed("github", huge)).status_code == 413


def test_a_commit_that_cannot_be_fetched_is_502_and_its_redelivery_runs(world: World) -> None:
    body = payload_for(world, "github", "ab" * 20)
    headers = signed("github", body)
    answer = post(world, "github", "app", body, headers)
    assert answer.status_code == 502 and answer.json()["error"]["code"] == "FETCH_FAILED"
    # The delivery was forgotten: sent again, it is tried again (and fails again), no duplicate.
    assert post(world, "github", "app", body, headers).status_code == 502


def test_the_source_on_loopback_is_refused_unless_allowed(
    tmp_path: Path, git_server: tuple[str, list[str]]
) -> None:
    for strict in make_world(tmp_path, git_server, HookLimits()):
        body = payload_for(strict, "github", strict.commits[0])
        answer = post(strict, "github", "app", body, signed("github", body))
        assert answer.status_code == 502
        assert "this machine or a private network" in answer.json()["error"]["message"]


def test_a_slow_fetch_is_answered_at_once_and_its_run_recorded_later(
    tmp_path: Path, git_server: tuple[str, list[str]]
) -> None:
    limits = HookLimits(allow_private=True, answer_within_s=0.05)
    for slow in make_world(tmp_path, git_server, limits):
        slow.runs.gate = threading.Event()
        body = payload_for(slow, "github", slow.commits[1])
        headers = signed("github", body)
        answer = post(slow, "github", "app", body, headers)
        assert answer.status_code == 202 and answer.json()["status"] == "accepted"
        # A redelivery meanwhile is a duplicate (no run known yet), not a second run.
        assert post(slow, "github", "app", body, headers).json() == {
            "status": "duplicate",
            "run": None,
        }
        slow.runs.gate.set()
        delivery = headers["X-GitHub-Delivery"]
        deadline = time.monotonic() + 30
        while slow.deliveries.run_of("github", delivery) is None:
            assert time.monotonic() < deadline, "the run was never recorded"
            time.sleep(0.02)
        assert slow.deliveries.run_of("github", delivery) == "run1"
        assert len(slow.runs.queued) == 1


def test_too_many_fetches_at_once_is_busy(
    tmp_path: Path, git_server: tuple[str, list[str]]
) -> None:
    limits = HookLimits(allow_private=True, answer_within_s=0.05, concurrent_fetches=1)
    for busy in make_world(tmp_path, git_server, limits):
        busy.runs.gate = threading.Event()
        first = payload_for(busy, "github", busy.commits[0])
        assert post(busy, "github", "app", first, signed("github", first)).status_code == 202
        second = payload_for(busy, "gitea", busy.commits[1])
        answer = post(busy, "gitea", "app", second, signed("gitea", second))
        assert answer.status_code == 503 and answer.json()["error"]["code"] == "BUSY"
        busy.runs.gate.set()
        deadline = time.monotonic() + 30
        while True:  # the first fetch ends; then the second's redelivery runs
            answer = post(busy, "gitea", "app", second, signed("gitea", second))
            if answer.status_code != 503:
                break
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert answer.status_code in (200, 202), answer.text
