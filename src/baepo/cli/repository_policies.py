"""`baepo registry policy …`: a repository's policies, ECR's rules for keeping a registry sane:
immutable tags (and lifecycle policies)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import typer

from baepo.cli.client import Client
from baepo.cli.errors import one_line_errors
from baepo.cli.output import console, emit

app = typer.Typer(
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


def _show(policies: dict[str, Any]) -> None:
    rule = "immutable" if policies["immutable_tags"] else "mutable"
    exceptions = policies["tag_exceptions"]
    but = f" (except {', '.join(exceptions)})" if exceptions else ""
    console.print(f"{policies['repository']}: tags are {rule}{but}", highlight=False)


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
