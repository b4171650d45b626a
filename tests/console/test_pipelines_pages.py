"""The pipelines' pages over HTTP: runs, a run with its log (live while it runs), re-run and
cancel, a service's git remote, webhooks and settings. The API's in-process world with the
pipelines' API, runs executed by a runner the test drives (`GatedRunner`)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from baepo.console import console_routes, relays
from baepo.control import SYSTEM
from baepo.pipelines import RunView
from tests.api.rights_world import REGISTRY
from tests.api.test_pipelines_api import PipelinesWorld, pipelines_world
from tests.api.test_service_logs_api import events_of
from tests.console.conftest import KEY, signed_in
from tests.console.test_service_pages import error_of
from tests.console.visitor import Visitor, text
from tests.runtime.waiting import eventually


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PipelinesWorld]:
    """alice's service `app` and bob's `web`, the pipelines' API and the console."""
    routes = console_routes(KEY, (REGISTRY,))
    yield from pipelines_world(tmp_path_factory.mktemp("pipeline-pages"), routes)


@pytest.fixture
def alice(site: PipelinesWorld) -> Visitor:
    return signed_in(site, "alice")


@pytest.fixture
def bob(site: PipelinesWorld) -> Visitor:
    return signed_in(site, "bob")


def started(site: PipelinesWorld, run: RunView) -> None:
    eventually(lambda: True if run.commit in site.runner.started else None, 10, "it runs")


def test_the_remote_and_webhook_urls_and_a_secret_shown_once(
    site: PipelinesWorld, alice: Visitor
) -> None:
    page = alice.get("/services/app/pipeline")
    assert page.status_code == 200
    assert 'class="code" value="http://127.0.0.1/git/app.git"' in page.text
    for provider in ("github", "gitea", "gitlab"):
        assert f'class="code" value="http://127.0.0.1/api/v1/hooks/{provider}/app"' in page.text
    assert "Webhooks have no secret yet" in text(page)

    made = alice.submit("/services/app/pipeline/webhook-secret")
    assert made.status_code == 200
    secret = re.search(
        r'<input id="webhook-secret" class="code" value="([^"]+)" readonly>', made.text
    )
    assert secret and len(secret.group(1)) >= 32
    assert "shown this once" in text(made)
    assert site.settings.get("app", caller=SYSTEM).has_webhook_secret
    again = alice.get("/services/app/pipeline")
    assert secret.group(1) not in again.text and "it is not shown again" in text(again)


def test_settings_are_saved_or_refused_beside_their_field(
    site: PipelinesWorld, alice: Visitor
) -> None:
    alice.get("/services/app/pipeline")
    script = "<script>alert(1)</script>"
    page = alice.submit("/services/app/pipeline", deploy_branch="a..b", source_url="")
    assert page.status_code == 400 and "is not a branch name" in error_of(page, "deploy_branch")
    assert 'value="a..b"' in page.text  # what was typed stays, to be corrected
    page = alice.submit("/services/app/pipeline", deploy_branch="main", source_url=script)
    assert page.status_code == 400 and "is not an http(s) URL" in error_of(page, "source_url")
    assert script not in page.text and "&lt;script&gt;" in page.text

    page = alice.submit("/services/app/pipeline", deploy_branch="main", source_url="ftp://x")
    assert page.status_code == 400 and "is not an http(s) URL" in error_of(page, "source_url")

    answer = alice.submit(
        "/services/app/pipeline",
        deploy_branch="release",
        source_url="https://git.example.com/team/app.git",
    )
    assert answer.status_code == 303
    saved = site.settings.get("app", caller=SYSTEM)
    assert saved.deploy_branch == "release"
    assert saved.source_url == "https://git.example.com/team/app.git"
    alice.submit("/services/app/pipeline", deploy_branch="main", source_url="")


def test_a_running_run_cancelled_then_run_again(site: PipelinesWorld, alice: Visitor) -> None:
    run = site.submit("c0ffee1")
    started(site, run)
    listed = text(alice.get("/pipelines"))
    assert re.search(rf"#{run.number} app running c0ffee1 main push", listed)
    assert f'href="/pipelines/runs/{run.id}"' in alice.get("/services/app/pipeline").text

    page = alice.get(f"/pipelines/runs/{run.id}")
    assert "working on c0ffee1" in text(page)
    assert f'data-follow="/pipelines/runs/{run.id}/log/live"' in page.text
    assert 'hx-trigger="every 2s"' in page.text  # the status reloads while it runs
    answer = alice.submit(f"/pipelines/runs/{run.id}/cancel")
    assert answer.status_code == 303 and answer.headers["location"] == f"/pipelines/runs/{run.id}"
    assert site.ended(run).status == "CANCELLED"
    page = alice.get(f"/pipelines/runs/{run.id}")
    assert "cancelled" in text(page) and "data-follow" not in page.text
    assert "Cancel run" not in text(page)

    refused = alice.submit(f"/pipelines/runs/{run.id}/cancel")
    assert refused.status_code == 409 and "has ended" in text(refused)

    alice.get(f"/pipelines/runs/{run.id}")
    answer = alice.submit(f"/pipelines/runs/{run.id}/rerun")
    assert answer.status_code == 303
    again_id = answer.headers["location"].rsplit("/", 1)[1]
    again = site.runs.get(again_id, caller=SYSTEM)
    assert again.commit == "c0ffee1" and again.rerun_of == run.id
    site.runner.open("c0ffee1")
    ended = site.ended(again)
    assert ended.status == "SUCCEEDED"
    shown = text(alice.get(f"/pipelines/runs/{again_id}"))
    assert "succeeded" in shown and "done with c0ffee1" in shown and "Re-run of" in shown


def test_a_runs_log_is_relayed_until_it_ends(
    site: PipelinesWorld, alice: Visitor, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = site.submit("feed5")
    started(site, run)
    site.runner.open("feed5")
    site.ended(run)
    monkeypatch.setattr(relays, "FOLLOW_S", 5.0)
    with alice.client.stream("GET", f"/pipelines/runs/{run.id}/log/live") as answer:
        assert answer.headers["content-type"].startswith("text/event-stream")
        body = "".join(answer.iter_text())
    events = events_of(body)
    lines = [json.loads(data)["text"] for kind, data in events if kind == "message"]
    assert lines.index("working on feed5") < lines.index("done with feed5")
    assert events[-1][0] == "end" and json.loads(events[-1][1])["status"] == "SUCCEEDED"


def test_another_users_runs_are_not_shown(
    site: PipelinesWorld, alice: Visitor, bob: Visitor
) -> None:
    run = site.submit("a11ce")
    started(site, run)
    assert f"/pipelines/runs/{run.id}" not in bob.get("/pipelines").text
    assert bob.get(f"/pipelines/runs/{run.id}").status_code == 404
    assert bob.get(f"/pipelines/runs/{run.id}/log/live").status_code == 404
    assert bob.get("/services/app/pipeline").status_code == 404
    bob.get("/")
    for path in (f"/pipelines/runs/{run.id}/cancel", f"/pipelines/runs/{run.id}/rerun"):
        assert bob.submit(path).status_code == 404, path
    assert bob.submit("/services/app/pipeline/webhook-secret").status_code == 404
    assert site.runs.get(run.id, caller=SYSTEM).status == "RUNNING"
    site.runner.open("a11ce")
    site.ended(run)
