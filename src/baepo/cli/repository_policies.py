"""`baepo registry policy …`: a repository's policies, ECR's rules for keeping a registry sane:
immutable tags, and lifecycle policies (ECR's JSON) that expire old images — previewed,
applied every hour, or now with `expire`; an image a service runs never expires."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer

from baepo.cli.client import Client, CliError
from baepo.cli.errors import one_line_errors
from baepo.cli.output import console, emit
from baepo.cli.usage import Typer

app = Typer(
    help="Repository policies: immutable tags and lifecycle policies (ECR's rules).",
    no_args_is_help=True,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
Except = Annotated[
    list[str] | None,
    typer.Option(
        "--except", help="A tag (wildcards: dev-*) that follows the other rule (repeatable)."
    ),
]


def _path(repository: str, what: str) -> str:
    return f"/api/v1/registry/repositories/{quote(repository, safe='')}/{what}"


PolicyFile = Annotated[
    Path | None,
    typer.Option("--file", "-f", help="A lifecycle policy in ECR's JSON format.", exists=True),
]
EXPIRY_COLUMNS = ["digest", "tags", "pushed_at", "rule_priority"]


def _show(policies: dict[str, Any]) -> None:
    rule = "immutable" if policies["immutable_tags"] else "mutable"
    exceptions = policies["tag_exceptions"]
    but = f" (except {', '.join(exceptions)})" if exceptions else ""
    console.print(f"{policies['repository']}: tags are {rule}{but}", highlight=False)
    if policies["lifecycle_policy"] is None:
        console.print("no lifecycle policy", highlight=False)
        return
    evaluated = policies["lifecycle_evaluated_at"] or "not yet"
    console.print(f"lifecycle policy (last applied: {evaluated}):", highlight=False)
    print(policies["lifecycle_policy"])


@app.command("show")
@one_line_errors
def show(repository: str, as_json: JsonFlag = False) -> None:
    """Show a repository's policies."""
    policies = Client.from_environment().get(_path(repository, "policies"))
    if as_json:
        emit(policies, [], True)
    else:
        _show(policies)


def _set_mutability(repository: str, immutable: bool, exceptions: list[str] | None) -> None:
    body = {"immutable": immutable, "exceptions": exceptions or []}
    _show(Client.from_environment().request("PUT", _path(repository, "tag-mutability"), json=body))


@app.command("immutable")
@one_line_errors
def immutable(repository: str, except_: Except = None) -> None:
    """Make tags immutable: a push over an existing tag is refused (but --except ones)."""
    _set_mutability(repository, True, except_)


@app.command("mutable")
@one_line_errors
def mutable(repository: str, except_: Except = None) -> None:
    """Let tags be pushed over again (the default), but --except ones."""
    _set_mutability(repository, False, except_)


@app.command("lifecycle")
@one_line_errors
def lifecycle(
    repository: str,
    file: PolicyFile = None,
    remove: Annotated[bool, typer.Option("--remove", help="Remove the policy.")] = False,
) -> None:
    """Set a repository's lifecycle policy from --file (checked as ECR checks it), or --remove
    it. It is applied every hour; `preview` shows what it would expire."""
    if remove == (file is not None):
        raise CliError("give --file POLICY.json or --remove")
    body = {"policy": file.read_text() if file is not None else None}
    _show(
        Client.from_environment().request("PUT", _path(repository, "lifecycle-policy"), json=body)
    )


@app.command("preview")
@one_line_errors
def preview(repository: str, file: PolicyFile = None, as_json: JsonFlag = False) -> None:
    """What the repository's lifecycle policy (or the one in --file) would expire now."""
    body = {"policy": file.read_text() if file else None}
    rows = Client.from_environment().post(_path(repository, "lifecycle-policy/preview"), json=body)
    emit(rows, EXPIRY_COLUMNS, as_json)
    if not as_json:
        console.print(f"{len(rows)} images would expire", highlight=False)


@app.command("expire")
@one_line_errors
def expire(repository: str, as_json: JsonFlag = False) -> None:
    """Apply the repository's lifecycle policy now (blobs go at the next `registry gc`)."""
    rows = Client.from_environment().post(_path(repository, "lifecycle-policy/apply"))
    emit(rows, EXPIRY_COLUMNS, as_json)
    if not as_json:
        console.print(f"{len(rows)} images expired", highlight=False)
