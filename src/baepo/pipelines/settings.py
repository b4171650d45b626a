"""A service's pipeline settings: its deploy branch, where webhooks' commits come from, and
the secret webhooks are signed with.

    deploy_branch    pushes (and webhooks) of this branch build, push and deploy; others run
                     their steps only. Default `main`.
    source_url       the http(s) git URL a webhook's commit is fetched from; a webhook whose
                     payload names another repository is refused. None: webhooks refused.
    webhook secret   made by Baepo (`rotate_webhook_secret`, shown once), sealed with the
                     control room's `SecretBox` at rest. None: webhooks refused.

A service without a row has the defaults. Reading settings is reading the service; changing
them is changing it (the API checks the rights); the webhook route reads the secret as Baepo
itself (`webhook_secret`), since a webhook's signature is its only credential.
"""

from __future__ import annotations

import re
import secrets
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from baepo.clock import Clock
from baepo.control import SYSTEM, Caller, SecretBox
from baepo.pipelines import records
from baepo.pipelines.errors import InvalidPipelineSettings
from baepo.pipelines.runs import ServiceDirectory
from baepo.pipelines.tables import SettingsRow
from baepo.store import Database

DEFAULT_BRANCH = "main"
MAX_URL = 1024
_BAD_REF = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|/\.|\.lock(/|$)")


@dataclass(frozen=True)
class PipelineSettings:
    service: str
    deploy_branch: str
    source_url: str | None
    has_webhook_secret: bool


def check_branch(name: str) -> str:
    """`name` if git takes it as a branch name (`git check-ref-format --branch`'s rules)."""
    if (
        not name
        or len(name) > 255
        or name.startswith(("-", "/", "."))
        or name.endswith(("/", ".", ".lock"))
        or name == "@"
        or _BAD_REF.search(name)
    ):
        raise InvalidPipelineSettings("deploy_branch", f"{name[:300]!r} is not a branch name")
    return name


def check_source_url(url: str) -> str:
    """`url` if it is an http(s) URL of a git repository (no credentials in it)."""
    parts = urlsplit(url)
    if len(url) > MAX_URL or parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidPipelineSettings(
            "source_url", f"{url[:300]!r} is not an http(s) URL of a git repository"
        )
    if parts.username or parts.password:
        raise InvalidPipelineSettings(
            "source_url", "a source URL carries no credentials: the repository must be readable"
        )
    return url


class Settings:
    def __init__(
        self, *, db: Database, secrets: SecretBox, services: ServiceDirectory, clock: Clock
    ) -> None:
        self._db = db
        self._box = secrets
        self._services = services
        self._clock = clock

    def get(self, service: str, *, caller: Caller) -> PipelineSettings:
        """The service's settings (`ServiceNotFound` if the caller does not reach it)."""
        since = self._services.identity(service, caller=caller).created_at
        with self._session() as s:
            return _view(service, _current(s, service, since))

    def update(
        self,
        service: str,
        *,
        caller: Caller,
        deploy_branch: str | None = None,
        source_url: str | None = None,
    ) -> PipelineSettings:
        """Change what is given; a `source_url` of "" forgets it."""
        branch = None if deploy_branch is None else check_branch(deploy_branch)
        url = None if not source_url else check_source_url(source_url)
        since = self._services.identity(service, caller=caller).created_at
        with self._session() as s, s.begin():
            row = self._row(s, service, since)
            if branch is not None:
                row.deploy_branch = branch
            if source_url is not None:
                row.source_url = url
            row.updated_at = self._clock.now()
            return _view(service, row)

    def rotate_webhook_secret(self, service: str, *, caller: Caller) -> str:
        """A new webhook secret, returned once (only its sealed form is kept)."""
        since = self._services.identity(service, caller=caller).created_at
        secret = secrets.token_urlsafe(32)
        sealed = self._box.seal(secret)
        with self._session() as s, s.begin():
            row = self._row(s, service, since)
            row.webhook_secret = sealed
            row.updated_at = self._clock.now()
        return secret

    def webhook_secret(self, service: str) -> str | None:
        """The secret webhooks of `service` are signed with (Baepo's own read)."""
        since = self._services.identity(service, caller=SYSTEM).created_at
        with self._session() as s:
            row = _current(s, service, since)
            sealed = row.webhook_secret if row is not None else None
        return None if sealed is None else self._box.open(sealed)

    def deploy_branch(self, service: str) -> str:
        """The branch that deploys (Baepo's own read, for the runner)."""
        return self.get(service, caller=SYSTEM).deploy_branch

    def _row(self, s: Session, service: str, since: datetime) -> SettingsRow:
        row = s.get(SettingsRow, service)
        if row is None:
            row = SettingsRow(service=service)
            s.add(row)
        if row.updated_at is None or row.updated_at < since:  # new, or an earlier service's
            row.deploy_branch, row.source_url, row.webhook_secret = DEFAULT_BRANCH, None, None
            row.updated_at = self._clock.now()
        return row

    def _session(self) -> AbstractContextManager[Session]:
        return records.session(self._db)


def _current(s: Session, service: str, since: datetime) -> SettingsRow | None:
    """The service's row, unless it was last written before the live service was made: a
    deleted service's settings (its webhook secret, its source) never pass to a new one of
    the same name and another owner."""
    row = s.get(SettingsRow, service)
    return row if row is not None and row.updated_at >= since else None


def _view(service: str, row: SettingsRow | None) -> PipelineSettings:
    if row is None:
        return PipelineSettings(service, DEFAULT_BRANCH, None, False)
    return PipelineSettings(
        service, row.deploy_branch, row.source_url, row.webhook_secret is not None
    )
