"""`baepo pipelines …` as a person types them, against the real API app in process (the
CLI's HTTP calls are sent to a `TestClient`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from baepo.cli.main import app
from baepo.control import SYSTEM
from tests.api.test_pipelines_api import PipelinesWorld, pipelines_world
from tests.runtime.waiting import eventually


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PipelinesWorld]:
    yield from pipelines_world(tmp_path_factory.mktemp("cli"))


@pytest.fixture
def baepo(w: PipelinesWorld, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    def request(method: str, url: str, timeout: float, **kwargs: Any) -> httpx.Response:
        answer: httpx.Response = w.client.request(method, url, **kwargs)
        return answer

    def stream(method: str, url: str, timeout: float, **kwargs: Any) -> Any:
        return w.client.stream(method, url, **kwargs)

    monkeypatch.setattr(httpx, "request", request)
    monkeypatch.setattr(httpx, "stream", stream)
    env = {
        "BAEPO_URL": "http://127.0.0.1",
        "BAEPO_TOKEN": w.base.token("alice", f"cli-{tmp_path.name}"),
        "BAEPO_CONFIG": str(tmp_path / "cli.json"),
        "COLUMNS": "250",
    }

    def run(*args: str) -> Any:
        return CliRunner().invoke(app, list(args), env=env)

    yield run


def test_list_show_and_logs(w: PipelinesWorld, baepo: Any) -> None:
    run = w.submit("abcdef0123456789")
    eventually(lambda: "abcdef0123456789" in w.runner.started or None, 10, "it starts")
    w.runner.open("abcdef0123456789")
    w.ended(run)
    listed = baepo("pipelines", "list", "app")
    assert listed.exit_code == 0, listed.output
    assert run.id in listed.output and "SUCCEEDED" in listed.output
    assert "abcdef012345" in listed.output and "abcdef0123456789" not in listed.output
    shown = baepo("pipelines", "show", run.id)
    assert shown.exit_code == 0, shown.output
    assert "all good" in shown.output and "work" in shown.output
    logs = baepo("pipelines", "logs", run.id)
    assert logs.exit_code == 0 and "working on abcdef0123456789" in logs.output
    followed = baepo("pipelines", "logs", run.id, "-f")
    assert followed.exit_code == 0, followed.output
    assert followed.output.splitlines()[:2] == logs.output.splitlines()[:2]
    missing = baepo("pipelines", "show", "nope")
    assert missing.exit_code == 1 and "no run 'nope' (RUN_NOT_FOUND)" in missing.output


def test_a_followed_run_that_fails_exits_1_and_cancel_and_rerun(
    w: PipelinesWorld, baepo: Any
) -> None:
    run = w.submit("f00d")
    eventually(lambda: "f00d" in w.runner.started or None, 10, "it starts")
    cancelled = baepo("pipelines", "cancel", run.id)
    assert cancelled.exit_code == 0, cancelled.output
    assert w.ended(run).status == "CANCELLED"
    followed = baepo("pipelines", "logs", run.id, "--follow")
    assert followed.exit_code == 1 and "run CANCELLED: cancelled by alice" in followed.output
    again = baepo("pipelines", "cancel", run.id)
    assert again.exit_code == 1 and "RUN_FINISHED" in again.output
    w.runner.open("f00d")
    rerun = baepo("pipelines", "rerun", run.id, "-f")
    assert rerun.exit_code == 0, rerun.output
    assert "working on f00d" in rerun.output
    newest = w.runs.list("app", caller=SYSTEM)[0]
    assert newest.rerun_of == run.id and newest.status == "SUCCEEDED"


def test_settings_and_webhook_secret(w: PipelinesWorld, baepo: Any) -> None:
    shown = baepo("pipelines", "settings", "app")
    assert shown.exit_code == 0 and "main" in shown.output
    changed = baepo("pipelines", "settings", "app", "--branch", "release", "--source-url", "")
    assert changed.exit_code == 0, changed.output
    assert w.settings.get("app", caller=SYSTEM).deploy_branch == "release"
    bad = baepo("pipelines", "settings", "app", "--branch", "a b")
    assert bad.exit_code == 1 and "INVALID_PIPELINE_SETTINGS" in bad.output
    made = baepo("pipelines", "webhook-secret", "app")
    assert made.exit_code == 0, made.output
    assert w.settings.webhook_secret("app") in made.output
    assert "/api/v1/hooks/<github|gitea|gitlab>/app" in made.output
