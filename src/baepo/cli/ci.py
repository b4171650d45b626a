"""`baepo ci github SERVICE`: write the CI workflow that builds, pushes and deploys the service
from GitHub Actions (or Gitea/Forgejo Actions), and say which secrets it needs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import quote, urlsplit

import typer

from baepo.cli.client import Client, CliError
from baepo.cli.errors import one_line_errors
from baepo.cli.output import error_console
from baepo.cli.settings import load_settings
from baepo.cli.usage import Typer

app = Typer(help="Workflows for other CI systems.", no_args_is_help=True)

WORKFLOW_PATH = ".github/workflows/baepo.yml"


@app.command("github")
@one_line_errors
def github(
    service: str,
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Where to write it ('-': print it)."),
    ] = Path(WORKFLOW_PATH),
    branch: Annotated[str, typer.Option(help="The branch whose pushes deploy.")] = "main",
    url: Annotated[
        str | None,
        typer.Option(help="Baepo's API as the CI runner reaches it (default: this CLI's)."),
    ] = None,
    registry: Annotated[
        str | None,
        typer.Option(help="Baepo's registry host as the runner reaches it (default: the URL's)."),
    ] = None,
    dockerfile: Annotated[str, typer.Option(help="The Dockerfile, from the root.")] = "Dockerfile",
    context: Annotated[str, typer.Option(help="The build context, from the root.")] = ".",
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
) -> None:
    """Write a GitHub Actions workflow (also valid for Gitea and Forgejo Actions) that builds
    the image on each push to BRANCH, pushes it to Baepo's registry, deploys it and fails
    unless the deployment succeeds."""
    # Imported here: the pipelines package loads the state store (sqlalchemy), a second on
    # every other command's start.
    from baepo.pipelines.workflows import WorkflowTarget, tokens_command, workflow

    client = Client.from_environment()
    found = client.get(f"/api/v1/services/{quote(service, safe='')}")
    api_url = (url or client.url).rstrip("/")
    target = WorkflowTarget(
        service=service,
        owner=str(found["owner"]),
        api_url=api_url,
        registry=registry or urlsplit(api_url).netloc,
        branch=branch,
        dockerfile=dockerfile,
        context=context,
    )
    try:
        text = workflow(target)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if str(output) == "-":
        print(text, end="")
    else:
        if output.exists() and not force:
            raise CliError(f"{output} exists (--force replaces it)")
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
        error_console.print(f"wrote {output}", highlight=False)
    login = load_settings().login_to(client.url)
    user = login.username if login and login.username else "<your user name>"
    error_console.print(
        "The repository needs two secrets (Settings → Secrets and variables → Actions):\n"
        f"  BAEPO_USER   {user}\n"
        f"  BAEPO_TOKEN  the token this prints: {tokens_command(target)}",
        highlight=False,
    )
