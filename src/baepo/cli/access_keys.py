"""`baepo access-keys …`: AWS-style access keys of API tokens, for the aws CLI, boto3 and
Terraform pointed at Baepo (`--endpoint-url`, see docs/aws.md)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import typer

from baepo.cli.client import Client
from baepo.cli.errors import one_line_errors
from baepo.cli.output import console, emit, error_console
from baepo.cli.usage import Typer

app = Typer(
    help="Access keys (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) acting as an API token.",
    no_args_is_help=True,
)

PATH = "/api/v1/access-keys"
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@app.command("create")
@one_line_errors
def create(
    token: Annotated[
        str | None,
        typer.Option(
            "--token", help="The API token whose rights it carries (default: the one in use)."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create an access key (its secret is shown once) with the rights of an API token.

    Prints AWS_ACCESS_KEY_ID=… and AWS_SECRET_ACCESS_KEY=… lines for the aws CLI and boto3;
    deleting the token (`baepo tokens rm`) revokes its keys."""
    body: dict[str, Any] = {} if token is None else {"token": token}
    made = Client.from_environment().post(PATH, json=body)
    if as_json:
        emit(made, [], True)
        return
    print(f"AWS_ACCESS_KEY_ID={made['access_key_id']}")
    print(f"AWS_SECRET_ACCESS_KEY={made['secret_access_key']}")
    error_console.print(
        f"access key of token {made['token']}: the secret is not shown again", highlight=False
    )


@app.command("list")
@app.command("ls", hidden=True)
@one_line_errors
def ls(as_json: JsonFlag = False) -> None:
    """List your access keys (never their secrets)."""
    rows = Client.from_environment().get(PATH)
    emit(rows, ["access_key_id", "token", "created_at", "last_used_at"], as_json)


@app.command("delete")
@app.command("rm", hidden=True)
@one_line_errors
def delete(key_id: str) -> None:
    """Revoke an access key."""
    Client.from_environment().delete(f"{PATH}/{quote(key_id, safe='')}")
    console.print(f"revoked access key {key_id}")
