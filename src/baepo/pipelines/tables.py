"""The pipelines room's tables: runs, each service's pipeline settings, webhook deliveries.

A run is one execution of a service's pipeline for one commit (pushed with git, announced by a
webhook, or started again by a person). Its log is not in the database: it is a file under
`<data>/pipelines/logs/<run id>.log`, secrets masked before they are written, and the source
it ran is kept as `<data>/pipelines/sources/<run id>.tar` for a re-run.

Run statuses (`RunStatus` in runs.py):

    QUEUED ──► RUNNING ──► SUCCEEDED
       │          ├──────► FAILED
       │          └──────► CANCELLED
       ├─────────────────► CANCELLED
       └─────────────────► SUPERSEDED   (a newer push to the same branch came first)

A service's settings row exists once someone set something (no row: the defaults, deploy
branch `main`, no webhook secret). Delivery ids are kept for `DELIVERY_KEEP_S` so that a
webhook delivered twice runs once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from baepo.store import Base, UtcDateTime


class RunRow(Base):
    __tablename__ = "pipeline_runs"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    service: Mapped[str] = mapped_column(sa.String(40), index=True)
    """The service's name (services are looked up by name; a run outlives a deleted one)."""
    owner: Mapped[str] = mapped_column(sa.String(64), index=True)
    """The service's owner when the run was made: who may read it besides admins."""
    number: Mapped[int]
    """1, 2, 3… per service, for people."""
    trigger: Mapped[str] = mapped_column(sa.String(32))
    """push | github | gitea | gitlab | rerun | api"""
    caller: Mapped[str] = mapped_column(sa.String(64))
    """Who started it: the pusher, the re-runner, or `webhook:<provider>`."""
    branch: Mapped[str] = mapped_column(sa.String(255))
    commit: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(16), index=True)
    message: Mapped[str] = mapped_column(sa.Text, default="")
    """One line: why it failed, or what it deployed."""
    steps: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    """[{name, status, exit_code, started_at, ended_at}], in the order they ran."""
    image: Mapped[str | None] = mapped_column(sa.String(255), default=None)
    """The image it built and pushed (`<registry>/<owner>/<service>:<commit>`)."""
    operation_id: Mapped[str | None] = mapped_column(sa.String(32), default=None)
    """The deploy operation it started."""
    rerun_of: Mapped[str | None] = mapped_column(sa.String(32), default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)

    __table_args__ = (sa.UniqueConstraint("service", "number"),)


class SettingsRow(Base):
    __tablename__ = "pipeline_settings"

    service: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    deploy_branch: Mapped[str] = mapped_column(sa.String(255), default="main")
    webhook_secret: Mapped[str | None] = mapped_column(sa.Text, default=None)
    """Sealed with the control room's SecretBox; None: webhooks are refused."""
    source_url: Mapped[str | None] = mapped_column(sa.String(1024), default=None)
    """Where a webhook's commit is fetched from (http/https git URL); None: webhooks refused."""
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DeliveryRow(Base):
    __tablename__ = "pipeline_deliveries"

    provider: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    delivery_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    service: Mapped[str] = mapped_column(sa.String(40))
    run_id: Mapped[str | None] = mapped_column(sa.String(32), default=None)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
