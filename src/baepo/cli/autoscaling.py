"""`baepo autoscaling …`: shared autoscaling configurations (App Runner's
AutoScalingConfiguration), which services name with `--autoscaling NAME[:REVISION]`."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import typer

from baepo.cli.client import Client, CliError
from baepo.cli.errors import one_line_errors
from baepo.cli.output import console, emit
from baepo.cli.usage import Typer

app = Typer(
    help="Autoscaling configurations services share: min/max size, max concurrency.",
    no_args_is_help=True,
)

PATH = "/api/v1/autoscaling-configurations"
COLUMNS = ["name", "revision", "latest", "owner", "min_size", "max_size", "max_concurrency"]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _path(reference: str) -> str:
    """The API path of `NAME` (its latest revision, or all of them) or `NAME:REVISION`."""
    name, sep, revision = reference.partition(":")
    if not name or (sep and not revision.isdigit()):
        raise CliError(f"{reference!r} is not NAME or NAME:REVISION (as fast or fast:2)")
    path = f"{PATH}/{quote(name, safe='')}"
    return f"{path}/{revision}" if sep else path


@app.command("create")
@one_line_errors
def create(
    name: str,
    min_size: Annotated[
        int, typer.Option("--min-size", help="Instances kept running, 0 to 25.")
    ] = 1,
    max_size: Annotated[
        int, typer.Option("--max-size", help="Instances the autoscaler may run, 1 to 25.")
    ] = 25,
    max_concurrency: Annotated[
        int,
        typer.Option("--max-concurrency", help="Requests per instance before queueing, 1 to 200."),
    ] = 100,
    owner: Annotated[
        str | None,
        typer.Option("--owner", help="A user or team namespace to own it (admins; default: you)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a configuration; with a name that exists, its next revision (the latest)."""
    body: dict[str, Any] = {
        "name": name,
        "min_size": min_size,
        "max_size": max_size,
        "max_concurrency": max_concurrency,
    }
    if owner is not None:
        body["owner"] = owner
    made = Client.from_environment().post(PATH, json=body)
    if as_json:
        emit(made, [], True)
        return
    console.print(
        f"created {made['name']}:{made['revision']}  min {made['min_size']}, max"
        f" {made['max_size']}, max concurrency {made['max_concurrency']}",
        highlight=False,
    )


@app.command("list")
@app.command("ls", hidden=True)
@one_line_errors
def ls(
    latest: Annotated[bool, typer.Option("--latest", help="Only each name's latest.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """The configurations you may use, newest revision first."""
    params = {"latest_only": "true"} if latest else None
    rows = Client.from_environment().get(PATH, params=params)
    for row in rows:
        row["services"] = len(row["services"]) if not as_json else row["services"]
    emit(rows, [*COLUMNS, "services"], as_json)


@app.command("describe")
@one_line_errors
def describe(reference: str, as_json: JsonFlag = False) -> None:
    """One configuration (NAME: its latest revision; NAME:REVISION) and the services using it;
    with NAME, the list of its revisions too."""
    client = Client.from_environment()
    shown = client.get(_path(reference))
    if as_json:
        emit(shown, [], True)
        return
    for key in [*COLUMNS, "created_at"]:
        console.print(f"[bold]{key:<16}[/bold]{shown.get(key)}", highlight=False)
    services = ", ".join(shown["services"]) or "none"
    hidden = shown["in_use"] - len(shown["services"])
    if hidden:
        services += f" (and {hidden} you cannot see)"
    console.print(f"[bold]{'services':<16}[/bold]{services}", highlight=False)
    if ":" not in reference:
        rows = client.get(PATH, params={"name": shown["name"]})
        for row in rows:
            row["services"] = ", ".join(row["services"])
        emit(rows, ["revision", "latest", *COLUMNS[4:], "services"], False, title="revisions")


@app.command("delete")
@app.command("rm", hidden=True)
@one_line_errors
def delete(reference: str, as_json: JsonFlag = False) -> None:
    """Delete NAME (every revision) or NAME:REVISION; refused while a service uses it."""
    deleted = Client.from_environment().delete(_path(reference))
    rows = deleted if isinstance(deleted, list) else [deleted]
    if as_json:
        emit(rows, [], True)
        return
    for row in rows:
        console.print(f"deleted {row['name']}:{row['revision']}", highlight=False)
