"""`baepo services …`: create, inspect, change and follow services (App Runner's verbs)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

import typer

from baepo.cli.client import Client, CliError
from baepo.cli.errors import one_line_errors
from baepo.cli.output import console, emit

app = typer.Typer(
    help="Services: an image running at https://<name>.<domain>.", no_args_is_help=True
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
WaitFlag = Annotated[
    bool, typer.Option("--wait", help="Follow the operation until it ends; exit 1 if it fails.")
]
FINISHED = {"SUCCEEDED", "FAILED", "ROLLBACK_SUCCEEDED", "ROLLBACK_FAILED"}


def _pairs(values: list[str] | None, what: str) -> dict[str, str] | None:
    if values is None:
        return None
    pairs: dict[str, str] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise CliError(f"{what} {value!r} must look like NAME=VALUE")
        pairs[key] = val
    return pairs


def _fields(
    *,
    image: str | None = None,
    port: int | None = None,
    command: str | None = None,
    env: list[str] | None = None,
    secret: list[str] | None = None,
    cpu: str | None = None,
    memory: str | None = None,
    health_check: str | None = None,
    health_check_path: str | None = None,
    min_instances: int | None = None,
    max_instances: int | None = None,
    max_concurrency: int | None = None,
    auto_deploy: bool | None = None,
    domain: list[str] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "image": image,
        "port": port,
        "command": command,
        "env": _pairs(env, "--env"),
        "secrets": _pairs(secret, "--secret"),
        "cpu": cpu,
        "memory": memory,
        "min_instances": min_instances,
        "max_instances": max_instances,
        "max_concurrency": max_concurrency,
        "auto_deploy": auto_deploy,
        "custom_domains": domain,
    }
    check: dict[str, Any] = {}
    if health_check is not None:
        check["protocol"] = health_check
    if health_check_path is not None:
        check["path"] = health_check_path
        check.setdefault("protocol", "http")
    if check:
        body["health_check"] = check
    return {k: v for k, v in body.items() if v is not None}


def _options(params: dict[str, Any]) -> dict[str, Any]:
    """The request body from a command's options (create and update share them)."""
    return _fields(**{k: v for k, v in params.items() if k in _FIELD_OPTIONS})


_FIELD_OPTIONS = frozenset(
    {
        "image",
        "port",
        "command",
        "env",
        "secret",
        "cpu",
        "memory",
        "health_check",
        "health_check_path",
        "min_instances",
        "max_instances",
        "max_concurrency",
        "auto_deploy",
        "domain",
    }
)


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
    if as_json:
        emit(operation, [], True)
    else:
        status = operation["status"]
        colour = {"SUCCEEDED": "green", "FAILED": "red"}.get(status, "yellow")
        console.print(
            f"{operation['kind']} {service}: [{colour}]{status}[/{colour}]"
            f"  (operation {operation['id']})"
        )
        if wait and status == "SUCCEEDED" and operation["kind"] != "DELETE_SERVICE":
            described = client.get(f"/api/v1/services/{quote(service, safe='')}")
            console.print(
                f"{described['status']}  {described['url']}"
                f"  revision {described['active_revision']}",
                highlight=False,
            )
    if wait and operation["status"] != "SUCCEEDED":
        message = operation.get("message") or "the operation failed"
        raise CliError(f"{operation['kind']} {service} {operation['status']}: {message}")


# The options shared by create and update.
ImageOpt = Annotated[str | None, typer.Option("--image", help="Image reference to run.")]
PortOpt = Annotated[int | None, typer.Option(help="Port the app listens on (default 8080).")]
CommandOpt = Annotated[str | None, typer.Option(help="Start command (default: the image's).")]
EnvOpt = Annotated[list[str] | None, typer.Option("--env", "-e", help="NAME=VALUE (repeatable).")]
SecretOpt = Annotated[
    list[str] | None, typer.Option("--secret", help="NAME=VALUE, encrypted at rest (repeatable).")
]
CpuOpt = Annotated[str | None, typer.Option(help="vCPU per instance: 0.25, 0.5, 1, 2, 4.")]
MemoryOpt = Annotated[str | None, typer.Option(help="Memory per instance, e.g. 2048 or '2 GB'.")]
CheckOpt = Annotated[str | None, typer.Option("--health-check", help="tcp or http.")]
CheckPathOpt = Annotated[
    str | None, typer.Option("--health-check-path", help="HTTP health check path (implies http).")
]
MinOpt = Annotated[int | None, typer.Option("--min-instances")]
MaxOpt = Annotated[int | None, typer.Option("--max-instances")]
ConcurrencyOpt = Annotated[
    int | None, typer.Option("--max-concurrency", help="Requests per instance before queueing.")
]
AutoOpt = Annotated[
    bool | None, typer.Option("--auto-deploy/--no-auto-deploy", help="Redeploy on each push.")
]
DomainOpt = Annotated[
    list[str] | None, typer.Option("--domain", help="Custom domain (repeatable, up to 5).")
]


@app.command("create")
@one_line_errors
def create(
    name: str,
    image: ImageOpt = None,
    port: PortOpt = None,
    command: CommandOpt = None,
    env: EnvOpt = None,
    secret: SecretOpt = None,
    cpu: CpuOpt = None,
    memory: MemoryOpt = None,
    health_check: CheckOpt = None,
    health_check_path: CheckPathOpt = None,
    min_instances: MinOpt = None,
    max_instances: MaxOpt = None,
    max_concurrency: ConcurrencyOpt = None,
    auto_deploy: AutoOpt = None,
    domain: DomainOpt = None,
    owner: Annotated[
        str | None,
        typer.Option("--owner", help="A user or team namespace to own it (admins; default: you)."),
    ] = None,
    wait: WaitFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Create a service from an image; it answers at https://<name>.<domain>."""
    if image is None:
        raise CliError("--image is required")
    client = Client.from_environment()
    body = {"name": name, **_options(locals())}
    if owner is not None:
        body["owner"] = owner
    created = client.post("/api/v1/services", json=body)
    if not as_json:
        console.print(f"creating {name} at {created['service']['url']}", highlight=False)
    _finish(client, created["operation"], wait, as_json, name)


@app.command("update")
@one_line_errors
def update(
    name: str,
    image: ImageOpt = None,
    port: PortOpt = None,
    command: CommandOpt = None,
    env: EnvOpt = None,
    secret: SecretOpt = None,
    cpu: CpuOpt = None,
    memory: MemoryOpt = None,
    health_check: CheckOpt = None,
    health_check_path: CheckPathOpt = None,
    min_instances: MinOpt = None,
    max_instances: MaxOpt = None,
    max_concurrency: ConcurrencyOpt = None,
    auto_deploy: AutoOpt = None,
    domain: DomainOpt = None,
    wait: WaitFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Change a service's configuration (env and secrets replace the old sets)."""
    client = Client.from_environment()
    body = _options(locals())
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
        console.print(f"[bold]{key:<16}[/bold]{service.get(key)}", highlight=False)
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
        console.print(f"[bold]{key:<16}[/bold]{config.get(key)}", highlight=False)
    for kind in ("env", "secrets"):
        for k, v in (config.get(kind) or {}).items():
            console.print(f"[bold]{kind:<16}[/bold]{k}={v}", highlight=False, markup=False)
    emit(
        list(service["instances"]),
        ["id", "revision", "state", "health", "address"],
        False,
        title="instances",
    )


@app.command("ops")
@one_line_errors
def ops(
    name: str,
    operation: Annotated[str | None, typer.Argument(help="Show this operation's log.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """A service's operations, newest first; or one operation with its log."""
    client = Client.from_environment()
    if operation is None:
        rows = client.get(f"/api/v1/services/{quote(name, safe='')}/operations")
        emit(rows, ["id", "kind", "status", "revision", "created_at", "message"], as_json)
        return
    op = client.get(f"/api/v1/operations/{quote(operation, safe='')}")
    if as_json:
        emit(op, [], True)
        return
    console.print(f"{op['kind']} {op['status']}  {op['message']}", highlight=False)
    for line in op["log"]:
        console.print(f"  {line['at'][11:19]}  {line['line']}", highlight=False, markup=False)


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
