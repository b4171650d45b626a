"""Running Baepo on a machine: install it as a systemd service, back it up, restore it.

These commands work on this machine's files (the unit, the data directory), not over the API,
like `baepo up` itself; they need the rights `baepo up` has (root, as scripts/up runs it).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from baepo.cli.output import console, error_console, human_bytes
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
from baepo.config import DEFAULT_DATA_DIR, Config
from baepo.systemd import UNIT, UNIT_DIR, Systemd, SystemdError, engine_unit, unit_text

if TYPE_CHECKING:
    from baepo.storage import StorageDriver

app = Typer()

UnitDir = Annotated[Path, typer.Option(help="The directory of systemd's units.")]


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def install(
    ctx: typer.Context,
    unit_dir: UnitDir = UNIT_DIR,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the unit; write and enable nothing.")
    ] = False,
) -> None:
    """Run Baepo as a systemd service, started now and at boot: `baepo install` takes the
    flags of `baepo up` (e.g. `baepo install --data-dir /var/lib/baepo --domain example.com`).

    The unit restarts Baepo when it fails and requires the engine's unit (docker.service);
    `journalctl -u baepo` shows the log; `baepo uninstall` removes it (not the data).
    """
    argv = up_argv(ctx)
    docker_host = argv[argv.index("--docker-host") + 1]
    engine = engine_unit(docker_host)
    try:
        text = unit_text(argv, engine)
        if dry_run:
            print(text, end="")
            return
        path = Systemd(unit_dir).install(text)
    except SystemdError as exc:
        _fail(exc)
    console.print(f"wrote {path}; {UNIT} is enabled and started", highlight=False)
    if engine is None:
        console.print(
            f"the engine at {docker_host} is not one systemd runs: make sure it starts at boot",
            highlight=False,
        )
    console.print("its log: journalctl -u baepo -f", highlight=False)


@app.command()
def uninstall(unit_dir: UnitDir = UNIT_DIR) -> None:
    """Stop Baepo's systemd service and remove its unit. The data directory stays; the
    router and the services keep serving until the next `baepo up` adopts them."""
    try:
        removed = Systemd(unit_dir).uninstall()
    except SystemdError as exc:
        _fail(exc)
    if removed is None:
        console.print(f"no {UNIT} in {unit_dir}: nothing to remove", highlight=False)
    else:
        console.print(f"stopped and disabled {UNIT}; removed {removed}", highlight=False)


@app.command()
def backup(
    archive: Annotated[Path, typer.Argument(help="The tar file to write (.tar.gz compresses).")],
    data_dir: Annotated[Path, typer.Option(help="The data directory to back up.")] = (
        DEFAULT_DATA_DIR
    ),
    database_url: DatabaseUrl = None,
    storage: Storage = "filesystem",
    s3_bucket: S3Bucket = None,
    s3_endpoint: S3Endpoint = None,
    s3_region: S3Region = "us-east-1",
    s3_prefix: S3Prefix = "",
    s3_access_key: S3AccessKey = None,
    s3_secret_key: S3SecretKey = None,
) -> None:
    """Write a consistent backup of an installation, while Baepo serves or not: the state
    database (SQLite or PostgreSQL: give the flags `baepo up` runs with), the registry's blobs
    (in the data directory or a bucket), keys, the CA, certificates, git remotes and logs."""
    from baepo import backup as backups  # sqlalchemy: not on every command's start

    store = _blob_store(
        storage, s3_bucket, s3_endpoint, s3_region, s3_prefix, s3_access_key, s3_secret_key
    )
    try:
        summary = backups.backup(data_dir.resolve(), archive, store, database_url=database_url)
    except backups.BackupError as exc:
        _fail(exc)
    console.print(
        f"wrote {archive}: the database (schema {summary.schema_revision}), {summary.blobs} "
        f"blobs, {summary.files} files, {human_bytes(summary.bytes)}",
        highlight=False,
    )


@app.command()
def restore(
    archive: Annotated[Path, typer.Argument(help="A file `baepo backup` wrote.")],
    data_dir: Annotated[
        Path, typer.Option(help="An empty (or new) directory to restore into.")
    ] = DEFAULT_DATA_DIR,
    storage: Storage = "filesystem",
    s3_bucket: S3Bucket = None,
    s3_endpoint: S3Endpoint = None,
    s3_region: S3Region = "us-east-1",
    s3_prefix: S3Prefix = "",
    s3_access_key: S3AccessKey = None,
    s3_secret_key: S3SecretKey = None,
) -> None:
    """Restore a backup into an empty data directory (its blobs there, or into a bucket with
    `--storage s3`); then `baepo up --data-dir` it, or first `baepo migrate-state --to` an
    empty PostgreSQL database. (On this machine, stop the Baepo it was taken from first: both
    would run the same services.)"""
    from baepo import backup as backups  # sqlalchemy: not on every command's start

    store = _blob_store(
        storage, s3_bucket, s3_endpoint, s3_region, s3_prefix, s3_access_key, s3_secret_key
    )
    try:
        summary = backups.restore(archive, data_dir.resolve(), store)
    except backups.BackupError as exc:
        _fail(exc)
    console.print(
        f"restored {summary.blobs} blobs and {summary.files} files into {data_dir} "
        f"(schema {summary.schema_revision}); start it with "
        f"`baepo up --data-dir {data_dir}`",
        highlight=False,
    )


def _blob_store(
    storage: str,
    bucket: str | None,
    endpoint: str | None,
    region: str,
    prefix: str,
    access_key: str | None,
    secret_key: str | None,
) -> StorageDriver | None:
    """The bucket the flags name, checked now; None for the data directory's own store."""
    if storage == "filesystem":
        return None
    from baepo.server import StartupError, storage_driver

    named = Config(
        storage=storage,
        s3_bucket=bucket,
        s3_endpoint=endpoint,
        s3_region=region,
        s3_prefix=prefix,
        s3_access_key=access_key,
        s3_secret_key=secret_key,
    )
    try:
        return storage_driver(named)
    except StartupError as exc:
        _fail(exc)


@app.command()
def migrate_state(
    target: Annotated[
        str,
        typer.Option("--to", help="The new, empty database: postgresql+psycopg://user@host/db."),
    ],
    source: Annotated[
        str | None,
        typer.Option("--from", help="The database to copy (default: the data directory's)."),
    ] = None,
    data_dir: Annotated[Path, typer.Option(help="The data directory Baepo runs on.")] = (
        DEFAULT_DATA_DIR
    ),
) -> None:
    """Copy the state database into another one, e.g. SQLite into PostgreSQL: the schema,
    then every row. The target must hold no rows; the source is not changed. Stop Baepo
    first, then start it with `--database-url` (and the same data directory: blobs and keys
    stay there)."""
    from baepo.schema import schema
    from baepo.store import StoreError
    from baepo.store.transfers import transfer

    source = source or Config(data_dir=data_dir.resolve()).database_url
    try:
        copied = transfer(source, target, schema())
    except StoreError as exc:
        _fail(exc)
    console.print(
        f"copied {copied.rows} rows of {copied.tables} tables; start Baepo with "
        f"--database-url pointing at the new database",
        highlight=False,
    )


def up_argv(ctx: typer.Context) -> list[str]:
    """The command the unit runs: this environment's `baepo up` with the flags given to
    `install`, checked by `up`'s own parser (a typo fails now, not at boot), with paths made
    absolute (the unit runs in /) and the engine's address written out (the unit does not
    see this shell's DOCKER_HOST)."""
    group = ctx.parent
    assert group is not None  # `install` is a subcommand of `baepo`
    up = group.command.get_command(group, "up")  # type: ignore[attr-defined]  # a Group's
    parsed = up.make_context("up", list(ctx.args), parent=group)
    argv = [*_baepo(), "up"]
    for param in up.params:
        name = param.name
        source = parsed.get_parameter_source(name) if name else None
        if name is None or source is None or source.name != "COMMANDLINE":
            continue
        value = parsed.params[name]
        if getattr(param, "is_flag", False):
            flag = param.opts if value else getattr(param, "secondary_opts", [])
            argv += flag[:1]
            continue
        for item in value if param.multiple else [value]:
            argv += [param.opts[0], str(item.resolve() if isinstance(item, Path) else item)]
    if "--docker-host" not in argv:
        argv += ["--docker-host", os.environ.get("DOCKER_HOST") or Config.docker_host]
    return argv


def _baepo() -> list[str]:
    """This environment's `baepo` (its script beside the interpreter, or `python -m baepo`)."""
    script = Path(sys.prefix) / "bin" / "baepo"
    return [str(script)] if os.access(script, os.X_OK) else [sys.executable, "-m", "baepo"]


def _fail(exc: Exception) -> NoReturn:
    error_console.print(f"[red]error:[/red] {exc}", highlight=False)
    raise typer.Exit(1) from None
