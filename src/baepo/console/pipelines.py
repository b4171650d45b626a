"""The pipelines' pages: runs (all of the caller's services', or one service's), a run with its
log (live while it runs), re-run and cancel; a service's pipeline: its git remote and webhook
URLs to copy, its deploy branch and source URL, and a new webhook secret (shown once). Each is
a call of `/api/v1/pipelines/...` or `/api/v1/services/{name}/pipeline`.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from baepo.console.client import segment
from baepo.console.errors import ApiRefused
from baepo.console.forms import Problems, refused_fields
from baepo.console.services import service_path
from baepo.console.visits import Visit

RUNS_SHOWN = 50
LOG_LINES = 2000
"""The last lines of a run's log its page shows (the whole log is the API's)."""
PROVIDERS = ("GitHub", "Gitea", "GitLab")
"""The forges whose webhooks the API takes (`/api/v1/hooks/<provider>/<service>`)."""
SETTINGS_FIELDS = ("deploy_branch", "source_url")


def run_path(run_id: str) -> str:
    return f"/pipelines/runs/{segment(run_id)}"


def took(started: str | None, ended: str | None) -> str:
    """How long from `started` to `ended` (API times), as `1m 05s`; "" when not both."""
    if not started or not ended:
        return ""
    try:
        seconds = int(
            (datetime.fromisoformat(ended) - datetime.fromisoformat(started)).total_seconds()
        )
    except ValueError:
        return ""
    minutes, seconds = divmod(max(seconds, 0), 60)
    return f"{minutes}m {seconds:02d}s" if minutes else f"{seconds}s"


def with_durations(run: dict[str, Any]) -> dict[str, Any]:
    steps = [{**step, "took": took(step["started_at"], step["ended_at"])} for step in run["steps"]]
    return {**run, "took": took(run["started_at"], run["ended_at"]), "steps": steps}


async def all_runs(visit: Visit) -> Response:
    runs = await visit.api.get(f"/pipelines/runs?limit={RUNS_SHOWN}")
    return await visit.render("runs.html", runs=[with_durations(r) for r in runs])


async def service_pipeline(visit: Visit) -> Response:
    return await show_pipeline(visit, visit.request.path_params["name"])


async def show_pipeline(
    visit: Visit,
    name: str,
    status: int = 200,
    secret: str = "",
    problems: Problems | None = None,
    typed: dict[str, str] | None = None,
) -> Response:
    """The service's pipeline page; `secret` is a webhook secret just made (shown this once),
    `problems` and `typed` those of the settings form."""
    path = service_path(name)
    service, settings, runs = await asyncio.gather(
        visit.api.get(path),
        visit.api.get(f"{path}/pipeline"),
        visit.api.get(f"/pipelines/runs?service={segment(name)}&limit={RUNS_SHOWN}"),
    )
    values = typed or {
        "deploy_branch": settings["deploy_branch"],
        "source_url": settings["source_url"] or "",
    }
    return await visit.render(
        "pipeline.html",
        status,
        service=service,
        settings=settings,
        runs=[with_durations(r) for r in runs],
        remote=f"{origin(visit.request)}/git/{segment(name)}.git",
        webhooks=[
            (provider, f"{origin(visit.request)}/api/v1/hooks/{provider.lower()}/{segment(name)}")
            for provider in PROVIDERS
        ],
        secret=secret,
        problems=problems or Problems(),
        values=values,
    )


def origin(request: Request) -> str:
    """Baepo's URL as this page was asked at: what a person's git and forge reach it at."""
    return f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"


async def change_settings(visit: Visit) -> Response:
    name = visit.request.path_params["name"]
    typed = {field: visit.form.get(field, "").strip() for field in SETTINGS_FIELDS}
    try:
        await visit.api.patch(f"{service_path(name)}/pipeline", typed)
    except ApiRefused as refused:
        if refused.status == 404:
            raise
        problems = settings_problems(refused)
        return await show_pipeline(visit, name, refused.status, problems=problems, typed=typed)
    return RedirectResponse(f"{service_path(name)}/pipeline", status_code=303)


def settings_problems(refused: ApiRefused) -> Problems:
    """The API's refusal of the settings by field: it names the bad one in its message
    (`deploy_branch: 'a..b' is not a branch name`)."""
    name, _, reason = refused.message.partition(": ")
    if refused.code == "INVALID_PIPELINE_SETTINGS" and name in SETTINGS_FIELDS:
        return Problems({name: reason})
    return refused_fields(refused, SETTINGS_FIELDS)


async def new_webhook_secret(visit: Visit) -> Response:
    """A new secret, shown on the page this once (the API keeps it sealed)."""
    name = visit.request.path_params["name"]
    made = await visit.api.post(f"{service_path(name)}/pipeline/webhook-secret")
    return await show_pipeline(visit, name, secret=made["secret"])


async def run_page(visit: Visit) -> Response:
    return await show_run(visit, visit.request.path_params["run_id"])


async def show_run(visit: Visit, run_id: str, status: int = 200, problem: str = "") -> Response:
    path = run_path(run_id)
    run, log = await asyncio.gather(visit.api.get(path), visit.api.text(f"{path}/logs"))
    lines = log.splitlines()
    return await visit.render(
        "run.html",
        status,
        run=with_durations(run),
        log=lines[-LOG_LINES:],
        cut=max(len(lines) - LOG_LINES, 0),
        done=run["status"] not in ("QUEUED", "RUNNING"),
        problem=problem,
    )


async def rerun(visit: Visit) -> Response:
    return await act_on_run(visit, "rerun")


async def cancel(visit: Visit) -> Response:
    return await act_on_run(visit, "cancel")


async def act_on_run(visit: Visit, verb: str) -> Response:
    """Re-run or cancel a run; to the page of the run the API answers with (a re-run's is a
    new one), or the run's page with the API's refusal (a run that has ended)."""
    run_id = visit.request.path_params["run_id"]
    try:
        answered = await visit.api.post(f"{run_path(run_id)}/{verb}")
    except ApiRefused as refused:
        if refused.status == 404:
            raise
        return await show_run(visit, run_id, refused.status, refused.message)
    return RedirectResponse(run_path(answered["id"]), status_code=303)
