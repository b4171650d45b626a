"""`baepo services …`: create, inspect, change and follow services (App Runner's verbs)."""

from __future__ import annotations

import inspect
import json
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

import typer
from rich.text import Text

from baepo.cli import sparklines
from baepo.cli.client import Client, CliError
from baepo.cli.errors import one_line_errors
from baepo.cli.output import console, emit
from baepo.cli.usage import Typer
from baepo.service_fields import FIELDS, HEALTH_CHECK_FIELDS, Kind, field_named
from baepo.service_fields import Field as SpecField

app = Typer(help="Services: an image running at https://<name>.<domain>.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
WaitFlag = Annotated[
    bool, typer.Option("--wait", help="Follow the operation until it ends; exit 1 if it fails.")
]
FINISHED = {"SUCCEEDED", "FAILED", "ROLLBACK_SUCCEEDED", "ROLLBACK_FAILED"}


def _pairs(values: list[str], what: str) -> dict[str, str]:
    """NAME=VALUE options as a map; '' adds nothing (`--env ''` alone is the empty set)."""
    pairs: dict[str, str] = {}
    for value in filter(None, values):
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise CliError(f"{what} {value!r} must look like NAME=VALUE")
        pairs[key] = val
    return pairs


# The options of create and update, one per field of the table that has a flag.
_OPTION_TYPES: dict[Kind, Any] = {
    Kind.INTEGER: int | None,
    Kind.VARIABLES: list[str] | None,
    Kind.HOSTS: list[str] | None,
    Kind.SWITCH: bool | None,
}
# A field with no entry is one string option (`--autoscaling NAME[:REVISION]`, '' for none).
_SET = ": the set given replaces the old one; '' empties it."
_HELP_NOTES = {Kind.PATH: " (implies http).", Kind.VARIABLES: _SET, Kind.HOSTS: _SET}


def _parameter(f: SpecField) -> inspect.Parameter:
    """`--flag` as Typer reads it from a signature, named after the flag (`--secret` → secret)."""
    decls = [f"{f.flag}/--no-{f.flag.removeprefix('--')}" if f.kind is Kind.SWITCH else f.flag]
    if f.short:
        decls.append(f.short)
    text = f.help.removesuffix(".") + _HELP_NOTES.get(f.kind, ".")
    option = typer.Option(None, *decls, help=text, show_default=False)
    kind = inspect.Parameter.KEYWORD_ONLY
    return inspect.Parameter(
        _option_name(f), kind, default=option, annotation=_OPTION_TYPES.get(f.kind, str | None)
    )


def _option_name(f: SpecField) -> str:
    return f.flag.removeprefix("--").replace("-", "_")


def _flagged() -> list[SpecField]:
    """Fields with a flag, the health check's in its place."""
    found: list[SpecField] = []
    for f in FIELDS:
        nested = HEALTH_CHECK_FIELDS if f.kind is Kind.HEALTH_CHECK else (f,)
        found += [each for each in nested if each.flag]
    return found


_SPEC_OPTIONS = [_parameter(f) for f in _flagged()]

Command = TypeVar("Command", bound=Callable[..., None])


def spec_options(command: Command) -> Command:
    """Give `command` an option per field (after its argument), passed in its `**options`."""
    signature = inspect.signature(command, eval_str=True)
    own = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
    later = [p.replace(kind=p.KEYWORD_ONLY) for p in own[1:]]  # Typer passes all by name
    parameters = [own[0], *_SPEC_OPTIONS, *later]
    # What inspect.signature (hence Typer) reads instead of the function's own parameters.
    command.__dict__["__signature__"] = signature.replace(parameters=parameters)
    return command


def _body(options: dict[str, Any]) -> dict[str, Any]:
    """The request body from a command's field options (the table's names, JSON values)."""
    body: dict[str, Any] = {}
    for f in FIELDS:
        if f.kind is Kind.HEALTH_CHECK:
            check = {h.name: options.get(_option_name(h)) for h in HEALTH_CHECK_FIELDS if h.flag}
            check = {k: v for k, v in check.items() if v is not None}
            if any(h.kind is Kind.PATH and h.name in check for h in HEALTH_CHECK_FIELDS):
                check.setdefault("protocol", "http")  # a path means an HTTP check
            if check:
                body[f.name] = check
            continue
        value = options.get(_option_name(f)) if f.flag else None
        if value is None:
            continue
        if f.kind is Kind.VARIABLES:
            value = _pairs(value, f.flag)
        elif f.kind is Kind.HOSTS:
            value = [host for host in value if host]  # `--domain ''`: none
        body[f.name] = value
    return body


def follow(client: Client, operation: dict[str, Any], as_json: bool) -> dict[str, Any]:
    """Poll the operation until it ends, printing its log as it grows and, while it is in
    progress, where it stands (its message) each time that changes."""
    shown = 0
    standing = ""
    while True:
        current: dict[str, Any] = client.get(f"/api/v1/operations/{operation['id']}")
        lines = current.get("log") or []
        if not as_json:
            for line in lines[shown:]:
                console.print(
                    f"  {line['at'][11:19]}  {line['line']}", highlight=False, markup=False
                )
        shown = len(lines)
        if current["status"] in FINISHED:
            return current
        message = str(current.get("message") or "")
        if message != standing and current["status"] == "IN_PROGRESS" and not as_json:
            console.print(f"  …         {message}", highlight=False, markup=False)
        standing = message
        time.sleep(0.3)


def in_turn(
    client: Client, service: str, wait: bool, as_json: bool, send: Callable[[], Any]
) -> Any:
    """`send()`; with --wait, a change refused because another operation is in flight waits
    for that operation to end ("waiting for operation …") and is sent again."""
    while True:
        try:
            return send()
        except CliError as exc:
            if not wait or exc.code != "OPERATION_IN_PROGRESS":
                raise
        described = client.get(f"/api/v1/services/{quote(service, safe='')}")
        busy = described.get("operation")
        if busy:
            if not as_json:
                console.print(f"waiting for operation {busy} to end", highlight=False)
            follow(client, {"id": busy}, as_json=True)


def _finish(client: Client, operation: Any, wait: bool, as_json: bool, service: str) -> None:
    if not isinstance(operation, dict) or "id" not in operation:
        raise CliError(f"unexpected answer from {client.url}: no operation")
    if wait:
        operation = follow(client, operation, as_json)
        if operation["status"] != "SUCCEEDED":
            raise CliError(_failure(operation, service, shown=not as_json))
    if as_json:
        emit(operation, [], True)
        return
    status = operation["status"]
    colour = {"SUCCEEDED": "green", "FAILED": "red"}.get(status, "yellow")
    console.print(
        f"{operation['kind']} {service}: [{colour}]{status}[/{colour}]"
        f"  (operation {operation['id']})"
    )
    if wait and operation["kind"] != "DELETE_SERVICE":
        described = client.get(f"/api/v1/services/{quote(service, safe='')}")
        console.print(
            f"{described['status']}  {described['url']}  revision {described['active_revision']}",
            highlight=False,
        )


def _failure(operation: dict[str, Any], service: str, shown: bool) -> str:
    """The line a failed operation exits with: its message, unless its log just printed it."""
    told = f"{operation['kind']} {service} {operation['status']} (operation {operation['id']})"
    message = str(operation.get("message") or "")
    logged = shown and any(message in line["line"] for line in operation.get("log") or [])
    return told if logged or not message else f"{told}: {message}"


ImageOpt = Annotated[str | None, typer.Option("--image", help=field_named("image").help)]


@app.command("create")
@one_line_errors
@spec_options
def create(
    name: str,
    owner: Annotated[
        str | None,
        typer.Option("--owner", help="A user or team namespace to own it (admins; default: you)."),
    ] = None,
    wait: WaitFlag = False,
    as_json: JsonFlag = False,
    **options: Any,
) -> None:
    """Create a service from an image; it answers at https://<name>.<domain>."""
    if options.get("image") is None:
        raise CliError("--image is required")
    client = Client.from_environment()
    body = {"name": name, **_body(options)}
    if owner is not None:
        body["owner"] = owner
    created = client.post("/api/v1/services", json=body)
    if not as_json:
        console.print(f"creating {name} at {created['service']['url']}", highlight=False)
    _finish(client, created["operation"], wait, as_json, name)


@app.command("update")
@one_line_errors
@spec_options
def update(name: str, wait: WaitFlag = False, as_json: JsonFlag = False, **options: Any) -> None:
    """Change a service's configuration: each option given replaces that setting (--env,
    --secret and --domain the whole set: '' empties one)."""
    client = Client.from_environment()
    body = _body(options)
    if not body:
        raise CliError("nothing to change: give at least one option")
    path = f"/api/v1/services/{quote(name, safe='')}"
    op = in_turn(client, name, wait, as_json, lambda: client.request("PATCH", path, json=body))
    _finish(client, op, wait, as_json, name)


@app.command("deploy")
@one_line_errors
def deploy(
    name: str, image: ImageOpt = None, wait: WaitFlag = False, as_json: JsonFlag = False
) -> None:
    """Deploy again (the tag may point to a new image now), or deploy --image instead."""
    client = Client.from_environment()
    body = {"image": image} if image else {}
    op = client.post(f"/api/v1/services/{quote(name, safe='')}/deployments", json=body)
    _finish(client, op, wait, as_json, name)


@app.command("rollback")
@one_line_errors
def rollback(
    name: str,
    to: Annotated[int, typer.Option("--to", help="The revision number to serve again.")],
    wait: WaitFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Serve an earlier revision again (its image digest and configuration)."""
    client = Client.from_environment()
    path = f"/api/v1/services/{quote(name, safe='')}/rollback"
    op = in_turn(client, name, wait, as_json, lambda: client.post(path, json={"revision": to}))
    _finish(client, op, wait, as_json, name)


def _simple(verb: str, doc: str) -> None:
    @one_line_errors
    def command(name: str, wait: WaitFlag = False, as_json: JsonFlag = False) -> None:
        client = Client.from_environment()
        path = f"/api/v1/services/{quote(name, safe='')}"
        op = in_turn(
            client,
            name,
            wait,
            as_json,
            lambda: client.delete(path) if verb == "rm" else client.post(f"{path}/{verb}"),
        )
        _finish(client, op, wait, as_json, name)

    command.__doc__ = doc
    app.command(verb)(command)


_simple("pause", "Stop every instance; the URL stays and answers with a paused page.")
_simple("resume", "Bring a paused service back on its last revision.")
_simple("rm", "Delete a service: its instances, its route, its URL.")


@app.command("ls")
@app.command("list", hidden=True)
@one_line_errors
def ls(as_json: JsonFlag = False) -> None:
    """List services."""
    rows = Client.from_environment().get("/api/v1/services")
    for row in rows:
        row["instances"] = len(row["instances"])
    emit(rows, ["name", "owner", "status", "url", "active_revision", "instances"], as_json)


@app.command("describe")
@one_line_errors
def describe(name: str, as_json: JsonFlag = False) -> None:
    """A service's status, URL, revisions, instances and configuration (secrets masked)."""
    service = Client.from_environment().get(f"/api/v1/services/{quote(name, safe='')}")
    if as_json:
        emit(service, [], True)
        return
    for key in ("name", "owner", "status", "url", "active_revision", "revision", "operation"):
        _described(key, service.get(key))
    config = service["config"]
    for key in (
        "image",
        "port",
        "cpu",
        "memory",
        "min_instances",
        "max_instances",
        "max_concurrency",
        "auto_deploy",
    ):
        _described(key, config.get(key))
    _described("autoscaling", config.get("autoscaling_configuration") or "its own")
    for kind in ("env", "secrets"):
        for k, v in (config.get(kind) or {}).items():
            _described(kind, f"{k}={v}")
    emit(
        list(service["instances"]),
        ["id", "revision", "state", "health", "address"],
        False,
        title="instances",
    )


def _described(key: str, value: object) -> None:
    """One line of `describe`: the key in bold, the value as it is (a value is never markup)."""
    console.print(Text.assemble((f"{key:<16}", "bold"), str(value)), highlight=False)


@app.command("ops")
@one_line_errors
def ops(
    name: str,
    operation: Annotated[
        str | None,
        typer.Argument(help="Show this operation's log (its id, or the start of it)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """A service's operations, newest first; or one operation with its log."""
    client = Client.from_environment()
    if operation is None:
        rows = client.get(f"/api/v1/services/{quote(name, safe='')}/operations")
        emit(rows, ["id", "kind", "status", "revision", "created_at", "message"], as_json)
        return
    listed = client.get(f"/api/v1/services/{quote(name, safe='')}/operations")
    chosen = operation_named(operation, [row["id"] for row in listed], name)
    op = client.get(f"/api/v1/operations/{chosen}")
    if as_json:
        emit(op, [], True)
        return
    console.print(f"{op['kind']} {op['status']}  {op['message']}", highlight=False)
    for line in op["log"]:
        console.print(f"  {line['at'][11:19]}  {line['line']}", highlight=False, markup=False)


def operation_named(given: str, ids: list[str], service: str) -> str:
    """The one id of `ids` that starts with `given`, as git takes the start of a commit's
    hash (a table on a terminal cuts ids, with a '…' that may come along when copied)."""
    prefix = given.strip().removesuffix("…")
    if not prefix:
        raise CliError("give an operation's id, or the start of it")
    found = [each for each in ids if each.startswith(prefix)]
    if not found:
        raise CliError(f"no operation of {service} starts with {prefix!r}")
    if len(found) > 1:
        raise CliError(f"{prefix!r} names {len(found)} operations of {service}: {', '.join(found)}")
    return found[0]


@app.command("revisions")
@one_line_errors
def revisions(name: str, as_json: JsonFlag = False) -> None:
    """A service's revisions (image digest + configuration), newest first."""
    rows = Client.from_environment().get(f"/api/v1/services/{quote(name, safe='')}/revisions")
    emit(rows, ["number", "active", "image", "digest", "created_at"], as_json)


@app.command("events")
@one_line_errors
def events(name: str, as_json: JsonFlag = False) -> None:
    """What happened to a service's instances (crashes, replacements), newest first."""
    rows = Client.from_environment().get(f"/api/v1/services/{quote(name, safe='')}/events")
    emit(rows, ["at", "kind", "instance", "message"], as_json)


@app.command("metrics")
@one_line_errors
def metrics(
    name: str,
    window: Annotated[
        str, typer.Option("--window", "-w", help="How far back: 30m, 1h, 6h, 24h (at most).")
    ] = "1h",
    as_json: JsonFlag = False,
) -> None:
    """Requests, errors, latency, load, CPU and memory, a point a minute, with sparklines."""
    body = Client.from_environment().get(
        f"/api/v1/services/{quote(name, safe='')}/metrics", params={"window": window}
    )
    if as_json:
        print(json.dumps(body, indent=2))
        return
    sparklines.show(body)


@app.command("logs")
@one_line_errors
def logs(
    name: str,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Then print new lines as they come (Ctrl-C).")
    ] = False,
    since: Annotated[
        str | None,
        typer.Option("--since", help="From this long ago (10m, 1h30m, 2d) or time (RFC 3339)."),
    ] = None,
    instance: Annotated[
        str | None, typer.Option("--instance", help="Only this instance's lines.")
    ] = None,
    revision: Annotated[
        int | None, typer.Option("--revision", help="Only this revision's lines.", min=1)
    ] = None,
    lines: Annotated[
        int,
        typer.Option("--lines", "-n", help="At most this many lines, the last.", min=0, max=10000),
    ] = 200,
    events: Annotated[
        bool,
        typer.Option("--events", help="The service's event log instead: deploys, health, crashes."),
    ] = False,
    everything: Annotated[
        bool, typer.Option("--all", help="What instances wrote and the event log, merged.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """What a service's instances wrote, in time order; those gone too (why did it crash?)."""
    client = Client.from_environment()
    path = f"/api/v1/services/{quote(name, safe='')}/logs"
    params = {"source": "all" if everything else "events" if events else "application"}
    params["limit"] = str(lines)
    for key, value in (("since", since), ("instance", instance), ("revision", revision)):
        if value is not None:
            params[key] = str(value)
    try:
        if not follow:
            _print_entries(client.get(path, params=params), as_json)
            return
        _follow_logs(client, path, params, as_json)
    except KeyboardInterrupt:
        return


def _follow_logs(client: Client, path: str, params: dict[str, str], as_json: bool) -> None:
    """Print the stream's lines as they come. When the server ends a follow (its time is up),
    follow again from the time it says, leaving out the lines printed already."""
    headers = {"Accept": "text/event-stream"}
    printed: deque[str] = deque(maxlen=1000)
    asked = {**params, "follow": "true"}
    while True:
        resume: str | None = None
        for kind, data in _server_sent(client.lines(path, asked, headers)):
            if kind == "end":
                resume = str(data.get("since") or "")
                break
            key = json.dumps(data, sort_keys=True)
            if key not in printed:
                printed.append(key)
                _print_entries([data], as_json, flush=True)
        if not resume:
            raise CliError(f"{client.url} ended the stream (stopped?)")
        asked = {**params, "follow": "true", "since": resume, "limit": "10000"}


def _server_sent(lines: Iterable[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event, its JSON data) for each Server-Sent Event of a stream."""
    kind, data = "message", []
    for line in lines:
        if line.startswith(":"):
            continue
        if line:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                kind = value
            elif field == "data":
                data.append(value)
            continue
        if data:
            try:
                decoded = json.loads("\n".join(data))
            except ValueError as exc:
                raise CliError(f"unexpected event in the stream: {data[0][:80]}") from exc
            if isinstance(decoded, dict):
                yield kind, decoded
        kind, data = "message", []


def _print_entries(entries: Iterable[dict[str, Any]], as_json: bool, flush: bool = False) -> None:
    for entry in entries:
        if as_json:
            print(json.dumps(entry), flush=flush)
            continue
        when = _when(str(entry.get("at", "")))
        if entry.get("source") == "events":
            operation = entry.get("operation")
            who = f"operation {operation[:8]}" if operation else f"{entry.get('stream')}"
        else:
            who = str(entry.get("instance") or "-")
            if entry.get("stream") == "stderr":
                who += " !"
        print(f"{when}  {who}  {entry.get('text', '')}", flush=flush)


def _when(at: str) -> str:
    """`2026-12-02 09:22:27.123` (UTC, as the server stamps lines) from its ISO form."""
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        return at
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
