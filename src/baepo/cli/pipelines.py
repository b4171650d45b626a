"""`baepo pipelines …`: a service's runs (test → build → push → deploy), their logs, cancel,
re-run, and the service's pipeline settings."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

import typer

from baepo.cli.client import Client, CliError
from baepo.cli.errors import one_line_errors
from baepo.cli.output import console, emit, error_console
from baepo.cli.services import _server_sent
from baepo.cli.usage import Typer

app = Typer(
    help="Pipelines: the runs that test, build, push and deploy a service's commits.",
    no_args_is_help=True,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
RUNS = "/api/v1/pipelines/runs"
SUCCEEDED = "SUCCEEDED"
COLUMNS = ["id", "service", "number", "status", "branch", "commit", "trigger", "caller", "took"]


def _run_path(run: str, *rest: str) -> str:
    return "/".join([RUNS, quote(run, safe=""), *rest])


def _settings_path(service: str) -> str:
    return f"/api/v1/services/{quote(service, safe='')}/pipeline"


def _took(run: dict[str, Any]) -> str | None:
    try:
        started = datetime.fromisoformat(str(run.get("started_at")))
        ended = datetime.fromisoformat(str(run.get("ended_at")))
    except ValueError:
        return None
    return f"{(ended - started).total_seconds():.1f} s"


def _row(run: dict[str, Any]) -> dict[str, Any]:
    return {**run, "commit": str(run.get("commit", ""))[:12], "took": _took(run)}


@app.command("list")
@one_line_errors
def list_runs(
    service: Annotated[str | None, typer.Argument(help="Only this service's runs.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many.", min=1)] = 20,
    as_json: JsonFlag = False,
) -> None:
    """Runs, newest first."""
    params: dict[str, str] = {"limit": str(limit)}
    if service is not None:
        params["service"] = service
    runs = Client.from_environment().get(RUNS, params=params)
    emit(runs if as_json else [_row(r) for r in runs], COLUMNS, as_json)


@app.command()
@one_line_errors
def show(run: str, as_json: JsonFlag = False) -> None:
    """A run: its status and why, its steps, the image it built, the deploy it started."""
    found = Client.from_environment().get(_run_path(run))
    if as_json:
        emit(found, [], True)
        return
    row = _row(found)
    for key in ("id", "service", "number", "status", "message", "branch", "commit"):
        console.print(f"[bold]{key:<14}[/bold]{found.get(key)}", highlight=False, markup=False)
    for key in ("trigger", "caller", "rerun_of", "image", "operation_id", "created_at", "took"):
        console.print(f"[bold]{key:<14}[/bold]{row.get(key)}", highlight=False, markup=False)
    steps = [{**s, "took": _took(s)} for s in found.get("steps", [])]
    if steps:
        emit(steps, ["name", "status", "exit_code", "took"], False, title="steps")


@app.command()
@one_line_errors
def logs(
    run: str,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            "-f",
            help="Then print new lines until the run ends; exit 1 unless it SUCCEEDED.",
        ),
    ] = False,
) -> None:
    """A run's log: its steps' output, the build's and the deploy's (secrets masked)."""
    client = Client.from_environment()
    try:
        if not follow:
            sys.stdout.write(client.request_text("GET", _run_path(run, "logs")))
            return
        status = follow_log(client, run)
    except KeyboardInterrupt:
        return
    if status != SUCCEEDED:
        raise typer.Exit(1)


def follow_log(client: Client, run: str) -> str:
    """Print the run's log lines as they come until it ends (reconnecting when the server
    ends a follow early); the run's final status."""
    headers = {"Accept": "text/event-stream"}
    after = 0
    while True:
        for kind, data in _server_sent(client.lines(_run_path(run, "logs"), {}, headers)):
            if kind == "end" and "status" in data:
                if data.get("message"):
                    error_console.print(
                        f"run {data.get('status')}: {data['message']}", highlight=False
                    )
                return str(data["status"])
            if kind == "end":
                break  # the follow's time is up: go on after the last line printed
            after = int(data.get("line", after))
            print(data.get("text", ""), flush=True)
        else:
            raise CliError(f"{client.url} ended the stream (stopped?)")
        headers = {"Accept": "text/event-stream", "Last-Event-ID": str(after)}


@app.command()
@one_line_errors
def cancel(run: str, as_json: JsonFlag = False) -> None:
    """Cancel a run: one that waits ends at once, one that executes stops."""
    found = Client.from_environment().post(_run_path(run, "cancel"))
    emit(found if as_json else _row(found), COLUMNS, as_json)


@app.command()
@one_line_errors
def rerun(
    run: str,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Then print its log until it ends.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Run a run's commit again, as a new run."""
    client = Client.from_environment()
    made = client.post(_run_path(run, "rerun"))
    emit(made if as_json else _row(made), COLUMNS, as_json)
    if follow and follow_log(client, str(made["id"])) != SUCCEEDED:
        raise typer.Exit(1)


@app.command()
@one_line_errors
def settings(
    service: str,
    branch: Annotated[
        str | None, typer.Option("--branch", help="Pushes of this branch deploy.")
    ] = None,
    source_url: Annotated[
        str | None,
        typer.Option(
            "--source-url", help="The http(s) git URL webhooks fetch commits from ('' forgets it)."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Show a service's pipeline settings, or change those given."""
    client = Client.from_environment()
    changes = {
        key: value
        for key, value in (("deploy_branch", branch), ("source_url", source_url))
        if value is not None
    }
    if changes:
        found = client.request("PATCH", _settings_path(service), json=changes)
    else:
        found = client.get(_settings_path(service))
    emit(found, ["service", "deploy_branch", "source_url", "has_webhook_secret"], as_json)


@app.command("webhook-secret")
@one_line_errors
def webhook_secret(service: str) -> None:
    """Make a new secret for the service's webhooks (the old one stops working): printed once."""
    client = Client.from_environment()
    made = client.post(f"{_settings_path(service)}/webhook-secret")
    print(made["secret"])
    hook = f"{client.url}/api/v1/hooks/<github|gitea|gitlab>/{quote(service, safe='')}"
    error_console.print(
        f"shown once: give it to your git host with the webhook URL {hook}", highlight=False
    )
