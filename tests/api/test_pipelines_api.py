"""`/api/v1/pipelines/…` and `/api/v1/services/{name}/pipeline`, in process: the real API app
and control room over memory fakes (`rights_world`), runs executed by a runner the test
drives."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import Request
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute

from baepo.api.app import create_api
from baepo.api.pipelines import pipelines_router
from baepo.api.security import Identity, identify
from baepo.auth import Auth
from baepo.control import SYSTEM, SecretBox, SpecChange
from baepo.pipelines import Runs, RunView, Settings
from baepo.router import LocalCA
from tests.api.rights_world import REGISTRY, RightsWorld, basic, bearer, build
from tests.api.test_service_logs_api import events_of
from tests.pipelines.world import GatedRunner, source_tar
from tests.runtime.waiting import eventually

R = "/api/v1/pipelines/runs"


@dataclass
class PipelinesWorld:
    base: RightsWorld
    runs: Runs
    settings: Settings
    runner: GatedRunner
    client: TestClient
    tmp: Path

    def request(
        self,
        who: str,
        method: str,
        path: str,
        body: object | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = {**self.base.headers.get(who, {}), **(headers or {})}
        answer: httpx.Response = self.client.request(method, path, json=body, headers=sent)
        return answer

    def submit(self, commit: str, service: str = "app", branch: str = "main") -> RunView:
        tar = source_tar(self.tmp / f"{commit}.tar", {"README": commit})
        return self.runs.submit(
            service, source=tar, branch=branch, commit=commit, trigger="push", caller=SYSTEM
        )

    def ended(self, run: RunView) -> RunView:
        def probe() -> RunView | None:
            now = self.runs.get(run.id, caller=SYSTEM)
            return now if now.done else None

        return eventually(probe, 10, "the run ends")


def identifier(auth: Auth) -> Callable[[Request], Awaitable[Identity]]:
    async def who(request: Request) -> Identity:
        return await identify(request, auth)

    return who


def pipelines_world(tmp_path: Path, routes: Sequence[BaseRoute] = ()) -> Iterator[PipelinesWorld]:
    """The world; `routes` are more edges of its app (the console's)."""
    for base in build(tmp_path):
        for user in ("alice", "bob"):
            base.headers[user] = basic(user)
        for name, owner in (("app", "alice"), ("web", "bob")):
            _, op = base.services.create(
                SpecChange({"name": name, "image": f"{REGISTRY}/{owner}/app:1"}), owner=owner
            )
            assert base.settle(op.id) == "SUCCEEDED"
        runner = GatedRunner()
        runs = Runs(
            db=base.db,
            services=base.services,
            runner=runner,
            clock=base.clock,
            directory=tmp_path / "pipelines",
        )
        runs.start()
        settings = Settings(
            db=base.db,
            secrets=SecretBox(SecretBox.generate_key()),
            services=base.services,
            clock=base.clock,
        )
        api = create_api(
            base.auth,
            base.registry,
            base.services,
            LocalCA(tmp_path / "ca2", base.clock),
            routes=routes,
        )

        api.include_router(pipelines_router(runs, settings, identifier(base.auth)))
        uploads = tmp_path / "uploads"
        uploads.mkdir()
        with TestClient(api, base_url="http://127.0.0.1") as client:
            yield PipelinesWorld(base, runs, settings, runner, client, uploads)
        for commit in runner.started:
            runner.open(commit)


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PipelinesWorld]:
    yield from pipelines_world(tmp_path_factory.mktemp("pipelines"))


def test_runs_are_listed_and_read_by_whoever_reaches_their_service(w: PipelinesWorld) -> None:
    run = w.submit("a1")
    w.runner.open("a1")
    w.ended(run)
    listed = w.request("alice", "GET", f"{R}?service=app")
    assert listed.status_code == 200, listed.text
    assert [r["id"] for r in listed.json()] == [run.id]
    one = w.request("alice", "GET", f"{R}/{run.id}").json()
    assert (one["status"], one["commit"], one["number"]) == ("SUCCEEDED", "a1", 1)
    assert [s["name"] for s in one["steps"]] == ["work"]
    assert w.request("bob", "GET", R).json() == []
    hidden = w.request("bob", "GET", f"{R}/{run.id}")
    assert (hidden.status_code, hidden.json()["error"]["code"]) == (404, "RUN_NOT_FOUND")
    assert w.request("bob", "POST", f"{R}/{run.id}/rerun").status_code == 404
    assert w.request("", "GET", R).status_code == 401


def test_the_log_as_text_and_followed_as_events(w: PipelinesWorld) -> None:
    run = w.submit("l1")
    eventually(lambda: "l1" in w.runner.started or None, 10, "the run starts")
    w.runner.open("l1")
    done = w.ended(run)
    text = w.request("alice", "GET", f"{R}/{run.id}/logs")
    assert text.headers["content-type"].startswith("text/plain")
    lines = text.text.splitlines()
    assert lines[:2] == ["-----> run #2 of app: main l1 (push)", "working on l1"]
    followed = w.request("alice", "GET", f"{R}/{run.id}/logs?follow=true")
    assert followed.headers["content-type"].startswith("text/event-stream")
    events = events_of(followed.text)
    assert [json.loads(data)["text"] for kind, data in events if kind == "message"] == lines
    assert events[-1] == (
        "end",
        json.dumps({"run": run.id, "status": "SUCCEEDED", "message": done.message}),
    )
    again = w.request(
        "alice",
        "GET",
        f"{R}/{run.id}/logs",
        headers={"Accept": "text/event-stream", "Last-Event-ID": "2"},
    )
    resumed = [json.loads(d) for k, d in events_of(again.text) if k == "message"]
    assert resumed[0] == {"line": 3, "text": lines[2]}


def test_cancel_and_rerun_are_deploys(w: PipelinesWorld) -> None:
    run = w.submit("c1")
    eventually(lambda: "c1" in w.runner.started or None, 10, "the run starts")
    limited = w.base.token("alice", "ci", services=("app",))
    repo_only = w.base.token("alice", "repo", repositories=("alice/app",))
    w.base.headers["ci"], w.base.headers["repo"] = bearer(limited), bearer(repo_only)
    refused = w.request("repo", "POST", f"{R}/{run.id}/cancel")
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "FORBIDDEN")
    asked = w.request("ci", "POST", f"{R}/{run.id}/cancel")
    assert asked.status_code == 200, asked.text
    assert w.ended(run).status == "CANCELLED"
    again = w.request("ci", "POST", f"{R}/{run.id}/cancel")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "RUN_FINISHED")
    rerun = w.request("ci", "POST", f"{R}/{run.id}/rerun")
    assert rerun.status_code == 202, rerun.text
    assert (rerun.json()["rerun_of"], rerun.json()["commit"]) == (run.id, "c1")
    w.runner.open("c1")
    assert w.ended(w.runs.get(rerun.json()["id"], caller=SYSTEM)).status == "SUCCEEDED"


def test_settings_and_the_webhook_secret(w: PipelinesWorld) -> None:
    path = "/api/v1/services/app/pipeline"
    assert w.request("alice", "GET", path).json() == {
        "service": "app",
        "deploy_branch": "main",
        "source_url": None,
        "has_webhook_secret": False,
    }
    changed = w.request(
        "alice", "PATCH", path, {"deploy_branch": "prod", "source_url": "https://git.test/a.git"}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["deploy_branch"] == "prod"
    bad = w.request("alice", "PATCH", path, {"deploy_branch": "a..b"})
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "INVALID_PIPELINE_SETTINGS")
    assert w.request("alice", "PATCH", path, {"branch": "x"}).status_code == 422
    made = w.request("alice", "POST", f"{path}/webhook-secret")
    assert made.status_code == 200 and len(made.json()["secret"]) >= 32
    assert w.settings.webhook_secret("app") == made.json()["secret"]
    assert w.request("alice", "GET", path).json()["has_webhook_secret"] is True
    assert w.request("bob", "GET", path).status_code == 404
    assert w.request("bob", "POST", f"{path}/webhook-secret").status_code == 404
    limited = w.base.token("alice", "ci2", services=("app",))
    w.base.headers["ci2"] = bearer(limited)
    assert w.request("ci2", "GET", path).status_code == 200
    assert w.request("ci2", "PATCH", path, {"deploy_branch": "x"}).status_code == 403
