"""The composition root: reads the configuration, builds every room, serves, and stops.

Nothing imports this module except the `baepo up` command.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

import uvicorn
from starlette.types import ASGIApp

from baepo.api.app import Dispatcher, create_api
from baepo.auth import Auth, load_or_create_key
from baepo.clock import Clock, SystemClock
from baepo.config import Config
from baepo.events import EventBus
from baepo.registry import Registry, create_app
from baepo.storage import FilesystemDriver
from baepo.store import Database, StoreError


class StartupError(Exception):
    """Baepo cannot start with this configuration (shown as one line)."""


class _Server(uvicorn.Server):
    """uvicorn, but a SIGTERM or SIGINT ends `run()` normally (exit status 0) instead of
    re-raising the signal after the graceful shutdown."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        def stop(signum: int, frame: FrameType | None) -> None:
            log.info("received %s: stopping", signal.Signals(signum).name)
            self.handle_exit(signum, frame)

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


log = logging.getLogger("baepo")


@dataclass
class Baepo:
    config: Config
    db: Database
    bus: EventBus
    auth: Auth
    registry: Registry
    app: ASGIApp
    generated_password: str | None


def build(config: Config, clock: Clock | None = None) -> Baepo:
    clock = clock or SystemClock()
    config.data_dir.mkdir(parents=True, exist_ok=True)
    config.secrets_dir.mkdir(mode=0o700, exist_ok=True)
    db = Database(config.database_url)
    db.migrate()
    bus = EventBus()
    auth = Auth(db, load_or_create_key(config.secrets_dir / "token.key"), clock)
    generated = auth.ensure_admin(config.admin_password)
    registry = Registry(db=db, driver=FilesystemDriver(config.blob_dir), bus=bus, clock=clock)
    app = Dispatcher(create_app(registry, auth), create_api(auth, registry))
    return Baepo(config, db, bus, auth, registry, app, generated)


def run(config: Config) -> None:
    """Serve in the foreground until SIGINT or SIGTERM."""
    logging.basicConfig(
        level=config.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        baepo = build(config)
    except (OSError, StoreError) as exc:
        raise StartupError(f"cannot use data directory {config.data_dir}: {exc}") from exc
    log.info("data directory %s", config.data_dir)
    if baepo.generated_password:
        # Shown once: the hash is all that is stored.
        print(f"admin password (shown once): {baepo.generated_password}", file=sys.stderr)
    log.info("registry and API on http://%s:%d (pid %d)", config.host, config.port, os.getpid())
    server = _Server(
        uvicorn.Config(
            baepo.app,
            host=config.host,
            port=config.port,
            log_level=config.log_level,
            lifespan="off",
            server_header=False,
            timeout_graceful_shutdown=10,
        )
    )
    try:
        server.run()
    finally:
        baepo.db.dispose()
        log.info("stopped")
