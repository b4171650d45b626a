"""`baepo`: run the server (`baepo up`) and drive it (everything else, over HTTP)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

import typer

from baepo import __version__
from baepo.cli.access_keys import app as access_keys_app
from baepo.cli.autoscaling import app as autoscaling_app
from baepo.cli.ci import app as ci_app
from baepo.cli.client import Client, CliError
from baepo.cli.errors import one_line_errors
from baepo.cli.operate import app as operate_app
from baepo.cli.output import console, emit, error_console, human_bytes
from baepo.cli.pipelines import app as pipelines_app
from baepo.cli.repository_policies import app as policy_app
from baepo.cli.services import app as services_app
from baepo.cli.settings import Login, load_settings, save_settings, server_key
from baepo.cli.storage_flags import (
    DatabaseUrl,
    S3AccessKey,
    S3Bucket,
    S3Endpoint,
    S3Prefix,
    S3Region,
    S3SecretKey,
    Storage,
)
from baepo.cli.usage import Typer
from baepo.config import DEFAULT_DATA_DIR

app = Typer(
    help="Baepo: push an image, get a running service.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
registry_app = Typer(help="Repositories, tags and garbage collection.", no_args_is_help=True)
users_app = Typer(help="Users (admin only).", no_args_is_help=True)
tokens_app = Typer(help="API tokens: passwords for robots and CI.", no_args_is_help=True)
app.add_typer(registry_app, name="registry")
registry_app.add_typer(policy_app, name="policy")
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(access_keys_app, name="access-keys")
app.add_typer(services_app, name="services")
app.add_typer(autoscaling_app, name="autoscaling")
app.add_typer(ci_app, name="ci")
app.add_typer(pipelines_app, name="pipelines")
app.add_typer(operate_app)  # install, uninstall, backup, restore: top-level commands

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _version_asked(asked: bool) -> None:
    if asked:
        version()
        raise typer.Exit()


@app.callback()
def options(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print Baepo's version and exit.",
            is_eager=True,
            callback=_version_asked,
        ),
    ] = False,
) -> None:
    """The options before a command."""


@app.command()
def up(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the registry and the API.")] = 5000,
    data_dir: Annotated[
        Path, typer.Option(help="Where Baepo keeps its state (database, blobs, keys).")
    ] = DEFAULT_DATA_DIR,
    domain: Annotated[str, typer.Option(help="Services answer at https://<name>.<domain>.")] = (
        "localhost"
    ),
    http_port: Annotated[int, typer.Option(help="Router's HTTP port (redirects).")] = 80,
    https_port: Annotated[int, typer.Option(help="Router's HTTPS port.")] = 443,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    docker_host: Annotated[
        str | None,
        typer.Option(help="Container engine socket (default: $DOCKER_HOST, else Docker's)."),
    ] = None,
    deploy_timeout: Annotated[
        float, typer.Option(help="Seconds a new revision has to become healthy.")
    ] = 300.0,
    acme_directory: Annotated[
        str | None,
        typer.Option(help="ACME directory URL: custom domains get certificates from it."),
    ] = None,
    acme_email: Annotated[str | None, typer.Option(help="Contact for the ACME account.")] = None,
    acme_ca_bundle: Annotated[
        Path | None, typer.Option(help="CA bundle to trust the ACME server's own TLS.")
    ] = None,
    acme_challenge_port: Annotated[
        int, typer.Option(help="Loopback port of the http-01 challenge responder.")
    ] = 8402,
    sample_image: Annotated[
        str | None,
        typer.Option(help="Run this image as the sample service `hello` if it does not exist."),
    ] = None,
    registry_host: Annotated[
        str,
        typer.Option(
            help="The registry and API also answer at https://<this>.<domain> through the "
            "router, with its certificate ('' turns that off)."
        ),
    ] = "registry",
    max_connections: Annotated[
        int | None,
        typer.Option(
            help="Open connections to the registry/API port beyond which new ones get 503 "
            "(default: half the open-file limit, at most 16384).",
            min=1,
        ),
    ] = None,
    header_timeout: Annotated[
        float,
        typer.Option(help="Seconds a client has to send a request's headers (then 408).", min=0.1),
    ] = 15.0,
    body_timeout: Annotated[
        float,
        typer.Option(
            help="Seconds a client may pause while sending a body (then closed).", min=0.1
        ),
    ] = 60.0,
    max_services_per_user: Annotated[
        int, typer.Option(help="Live services one user may own (admins: no bound).", min=1)
    ] = 50,
    max_instances_per_user: Annotated[
        int,
        typer.Option(help="Instances (sum of min instances) one user's services may run.", min=1),
    ] = 100,
    upload_ttl: Annotated[
        float,
        typer.Option(help="Seconds an idle blob upload is kept before it is removed.", min=1),
    ] = 86400.0,
    kept_log_lines: Annotated[
        int,
        typer.Option(help="Lines of gone instances' output a service keeps (at most).", min=4),
    ] = 10_000,
    kept_log_mib: Annotated[
        float,
        typer.Option(help="MiB of gone instances' output a service keeps on disk.", min=0.01),
    ] = 10.0,
    runtime_image: Annotated[
        list[str] | None,
        typer.Option(
            help="RUNTIME=IMAGE: the base image an apprunner.yaml app of that runtime "
            "(python3, nodejs18, …) is built on (repeatable).",
        ),
    ] = None,
    pipeline_workers: Annotated[
        int, typer.Option(help="Pipeline runs that may execute at once.", min=1)
    ] = 2,
    webhook_private_sources: Annotated[
        bool,
        typer.Option(
            "--webhook-private-sources",
            help="Webhooks may fetch from loopback and private networks (a git server on this "
            "host or LAN); off: a source URL could reach internal addresses.",
        ),
    ] = False,
    git_max_push_mib: Annotated[
        int, typer.Option(help="MiB a push to a service's git remote may send.", min=1)
    ] = 1024,
    git_timeout: Annotated[
        float,
        typer.Option(help="Seconds one git request may take (a push's includes its run).", min=1),
    ] = 3600.0,
    swarm_edge_image: Annotated[
        str | None,
        typer.Option(
            help="Run services on the Docker Swarm whose manager --docker-host is, with this "
            "image (any with `sleep`) as the edge the router reaches tasks through "
            "(docs/swarm.md).",
        ),
    ] = None,
    swarm_node_engine: Annotated[
        list[str] | None,
        typer.Option(
            help="HOSTNAME=URL: the engine (unix:// or tcp://) of that swarm node, where Baepo "
            "reads its instances' CPU and memory (repeatable; the manager's needs none).",
        ),
    ] = None,
    registry_pull_host: Annotated[
        str | None,
        typer.Option(
            help="HOST[:PORT] where the engine (every swarm node) pulls Baepo's images from "
            "(default: the API's address; the port: --port).",
        ),
    ] = None,
    peer_address: Annotated[
        str | None,
        typer.Option(
            help="HOST:PORT where the other Baepo processes on the same database reach this "
            "one's API (default: the API's address; docs/operations.md).",
        ),
    ] = None,
    registry_address: Annotated[
        list[str] | None,
        typer.Option(
            help="Another HOST[:PORT] images in Baepo's registry are named by: a load balancer "
            "in front of several Baepo processes (repeatable; docs/operations.md).",
        ),
    ] = None,
    storage: Storage = "filesystem",
    s3_bucket: S3Bucket = None,
    s3_endpoint: S3Endpoint = None,
    s3_region: S3Region = "us-east-1",
    s3_prefix: S3Prefix = "",
    s3_access_key: S3AccessKey = None,
    s3_secret_key: S3SecretKey = None,
    s3_redirect: Annotated[
        bool,
        typer.Option("--s3-redirect", help="Blob downloads redirect (307) to presigned S3 URLs."),
    ] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Run Baepo in the foreground: registry, API and loops. Stops on SIGINT or SIGTERM.

    The first admin's password comes from BAEPO_ADMIN_PASSWORD; without it a password is
    generated and printed once.
    """
    from baepo.config import Config
    from baepo.server import StartupError, run

    config = Config(
        host=host,
        port=port,
        data_dir=data_dir.resolve(),
        domain=domain,
        http_port=http_port,
        https_port=https_port,
        admin_password=os.environ.get("BAEPO_ADMIN_PASSWORD") or None,
        log_level=log_level.lower(),
        docker_host=docker_host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock",
        deploy_timeout_s=deploy_timeout,
        sample_image=sample_image,
        acme_directory=acme_directory,
        acme_email=acme_email,
        acme_ca_bundle=acme_ca_bundle,
        acme_challenge_port=acme_challenge_port,
        registry_host=registry_host,
        max_connections=max_connections,
        header_timeout_s=header_timeout,
        body_timeout_s=body_timeout,
        upload_ttl_s=upload_ttl,
        max_services_per_user=max_services_per_user,
        max_instances_per_user=max_instances_per_user,
        kept_log_lines=kept_log_lines,
        kept_log_bytes=int(kept_log_mib * 1024 * 1024),
        runtime_images=tuple(
            _pair(item, "RUNTIME=IMAGE", "--runtime-image") for item in runtime_image or ()
        ),
        pipeline_workers=pipeline_workers,
        webhook_private_sources=webhook_private_sources,
        git_max_push_bytes=git_max_push_mib * 1024 * 1024,
        git_timeout_s=git_timeout,
        swarm_edge_image=swarm_edge_image,
        swarm_node_engines=tuple(
            _pair(item, "HOSTNAME=URL", "--swarm-node-engine") for item in swarm_node_engine or ()
        ),
        registry_pull_host=registry_pull_host,
        registry_addresses=tuple(registry_address or ()),
        peer_address=peer_address,
        storage=storage,
        s3_bucket=s3_bucket,
        s3_endpoint=s3_endpoint,
        s3_region=s3_region,
        s3_prefix=s3_prefix,
        s3_access_key=s3_access_key,
        s3_secret_key=s3_secret_key,
        s3_redirect=s3_redirect,
        database=database_url,
    )
    try:
        run(config)
    except StartupError as exc:
        error_console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None


def _pair(item: str, form: str, option: str) -> tuple[str, str]:
    """`item`, given as `form` (NAME=VALUE) to `option`, as (NAME, VALUE)."""
    name, _, value = item.partition("=")
    if not name.strip() or not value.strip():
        raise typer.BadParameter(f"{item!r} is not {form}", param_hint=option)
    return name.strip(), value.strip()


@app.command()
@one_line_errors
def login(
    username: Annotated[str, typer.Option("--username", "-u")] = "admin",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    url: Annotated[str | None, typer.Option(help="Baepo's address.")] = None,
) -> None:
    """Sign in and keep an API token for this server (revoking the one it replaces)."""
    password = _password(password_stdin, confirm=False)
    client = Client.from_environment(url)
    client.token = None
    answer = client.post("/api/v1/login", json={"username": username, "password": password})
    settings = load_settings()
    replaced = settings.login_to(client.url)
    settings.url = client.url
    settings.logins[client.url] = Login(token=answer["token"], username=answer["username"])
    path = save_settings(settings)
    console.print(
        f"Signed in to {client.url} as {answer['username']} (token kept in {path})",
        highlight=False,
    )
    if replaced is not None and replaced.token != answer["token"]:
        try:
            _revoke(client.url, replaced.token)
        except CliError as exc:
            error_console.print(f"the token it replaces is not revoked: {exc}", highlight=False)


def _password(from_stdin: bool, confirm: bool) -> str:
    """The first line of stdin, or asked on the terminal (twice when `confirm`). Without a
    terminal there is no one to ask: a script gives it with --password-stdin, as to docker."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise CliError("no password on stdin")
        return password
    if not sys.stdin.isatty():
        raise CliError(
            "no terminal to ask for the password: give it on stdin with --password-stdin"
        )
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=confirm))


@app.command()
@one_line_errors
def logout(
    url: Annotated[
        str | None,
        typer.Option(help="Baepo's address (default: $BAEPO_URL, else the last signed in to)."),
    ] = None,
) -> None:
    """Revoke the token kept for this server and forget it."""
    where = Client.from_environment(url).url
    settings = load_settings()
    login = settings.login_to(where)
    if login is None:
        console.print(f"not signed in to {where}", highlight=False)
        return
    _revoke(where, login.token)
    del settings.logins[server_key(where)]
    save_settings(settings)
    console.print(f"Signed out of {where}", highlight=False)


def _revoke(url: str, token: str) -> None:
    """Revoke an API token at its server; one that no longer works is revoked already."""
    try:
        Client(url=url, token=token).post("/api/v1/logout")
    except CliError as exc:
        if exc.code != "UNAUTHENTICATED":
            raise


@app.command()
@one_line_errors
def ca(
    out: Annotated[Path | None, typer.Option("--out", help="Write the PEM to this file.")] = None,
) -> None:
    """Print the local CA's root certificate: trust it and https://*.<domain> is trusted.

    e.g. `baepo ca --out /usr/local/share/ca-certificates/baepo.crt && update-ca-certificates`
    """
    pem = Client.from_environment().request_text("GET", "/api/v1/ca")
    if out is None:
        print(pem, end="")
    else:
        out.write_text(pem)
        error_console.print(f"wrote {out}")


# -- registry ------------------------------------------------------------------------------


@registry_app.command("repos")
@one_line_errors
def registry_repos(as_json: JsonFlag = False) -> None:
    """List repositories."""
    rows = Client.from_environment().get("/api/v1/registry/repositories")
    emit(rows, ["name", "tags", "public", "created_at"], as_json)


@registry_app.command("tags")
@one_line_errors
def registry_tags(repository: str, as_json: JsonFlag = False) -> None:
    """List a repository's tags with their digests."""
    rows = Client.from_environment().get(
        f"/api/v1/registry/repositories/{quote(repository, safe='')}/tags"
    )
    emit(rows, ["tag", "digest", "media_type", "pushed_at"], as_json)


@registry_app.command("rm")
@one_line_errors
def registry_rm(
    reference: Annotated[str, typer.Argument(help="REPOSITORY, REPOSITORY:TAG or REPO@DIGEST")],
) -> None:
    """Delete a tag, a manifest, or a whole repository (blobs go at the next gc)."""
    client = Client.from_environment()
    name, sep, digest = reference.partition("@")
    if sep:
        client.delete(f"/api/v1/registry/repositories/{quote(name, safe='')}/manifests/{digest}")
    elif ":" in reference.rsplit("/", 1)[-1]:
        name, tag = reference.rsplit(":", 1)
        client.delete(
            f"/api/v1/registry/repositories/{quote(name, safe='')}/tags/{quote(tag, safe='')}"
        )
    else:
        client.delete(f"/api/v1/registry/repositories/{quote(name, safe='')}")
    console.print(f"deleted {reference}")


@registry_app.command("public")
@one_line_errors
def registry_public(
    repository: str,
    off: Annotated[bool, typer.Option("--off", help="Make it private again.")] = False,
) -> None:
    """Allow anonymous pulls of a repository (or stop allowing them with --off)."""
    Client.from_environment().request(
        "PUT",
        f"/api/v1/registry/repositories/{quote(repository, safe='')}/public",
        json={"public": not off},
    )
    console.print(f"{repository} is now {'private' if off else 'public'}")


@registry_app.command("gc")
@one_line_errors
def registry_gc(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would go.")] = False,
    grace: Annotated[
        float | None,
        typer.Option(help="Keep blobs and uploads younger than this many seconds (default 3600)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Delete blobs no manifest references (a grace period protects pushes in progress)."""
    body: dict[str, object] = {"dry_run": dry_run}
    if grace is not None:
        body["grace_seconds"] = grace
    report = Client.from_environment().post("/api/v1/registry/gc", json=body)
    if as_json:
        emit(report, [], True)
        return
    verb = "would free" if dry_run else "freed"
    for digest in report["blobs"]:
        console.print(f"  blob    {digest}", highlight=False)
    for upload in report["uploads"]:
        console.print(f"  upload  {upload}", highlight=False)
    console.print(
        f"{verb} {human_bytes(report['bytes_freed'])}: {len(report['blobs'])} blobs,"
        f" {len(report['uploads'])} abandoned uploads, {report['temp_files']} temp files",
        highlight=False,
    )


# -- users and tokens ----------------------------------------------------------------------


@users_app.command("ls")
@one_line_errors
def users_ls(as_json: JsonFlag = False) -> None:
    """List users."""
    emit(
        Client.from_environment().get("/api/v1/users"), ["name", "is_admin", "created_at"], as_json
    )


@users_app.command("create")
@one_line_errors
def users_create(
    name: str,
    admin: Annotated[bool, typer.Option("--admin")] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
) -> None:
    """Create a user (the password is asked twice, or read from stdin)."""
    password = _password(password_stdin, confirm=True)
    Client.from_environment().post(
        "/api/v1/users", json={"name": name, "password": password, "is_admin": admin}
    )
    console.print(f"created user {name}")


@users_app.command("rm")
@one_line_errors
def users_rm(name: str) -> None:
    """Delete a user and their tokens."""
    Client.from_environment().delete(f"/api/v1/users/{quote(name, safe='')}")
    console.print(f"deleted user {name}")


@tokens_app.command("create")
@one_line_errors
def tokens_create(
    name: str,
    repository: Annotated[
        list[str] | None,
        typer.Option("--repository", "-r", help="Limit to this repository (repeatable; prefix*)."),
    ] = None,
    service: Annotated[
        list[str] | None,
        typer.Option(
            "--service", "-s", help="Limit to reading and deploying this service (repeatable)."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create an API token (shown once). Use it as a password: docker login -u token.

    For CI: `--service app` deploys app and reads its status, nothing else; add
    `--repository alice/app` to let it push that repository too."""
    token = Client.from_environment().post(
        "/api/v1/tokens",
        json={"name": name, "repositories": repository or [], "services": service or []},
    )
    if as_json:
        emit(token, [], True)
    else:
        print(token["token"])


@tokens_app.command("ls")
@one_line_errors
def tokens_ls(as_json: JsonFlag = False) -> None:
    """List your API tokens."""
    rows = Client.from_environment().get("/api/v1/tokens")
    emit(rows, ["name", "repositories", "services", "created_at", "last_used_at"], as_json)


@tokens_app.command("rm")
@one_line_errors
def tokens_rm(name: str) -> None:
    """Revoke an API token."""
    Client.from_environment().delete(f"/api/v1/tokens/{quote(name, safe='')}")
    console.print(f"revoked token {name}")


@app.command()
def version() -> None:
    """Print Baepo's version."""
    print(f"baepo {__version__}")


def main() -> None:
    app(prog_name="baepo")  # `python -m baepo` too: completion is bound to this name
