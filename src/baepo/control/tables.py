"""The control room's tables: services, revisions, operations and their logs, service events,
shared autoscaling configurations, and the cursors of the logs the control room follows (the
registry's pushes).

A service row holds the *desired* state the reconciler converges to: the revision that should
serve (`revision`), whether it is paused or being deleted. `active_revision` is the last one
that finished deploying. Instances are not stored: the engine's labelled containers are the
truth about what runs. A deleted service keeps its row (status DELETED, `deleted_at` set) so its
operations stay readable; its name is free again. A service has an `owner` (a user name or a
team namespace, as repositories have); services made before owners existed belong to `admin`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from baepo.control.callers import ADMIN_OWNER
from baepo.store import Base, UtcDateTime


class ServiceRow(Base):
    __tablename__ = "control_services"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(40), index=True)
    owner: Mapped[str] = mapped_column(
        sa.String(64), index=True, default=ADMIN_OWNER, server_default=ADMIN_OWNER
    )
    """Who may see and operate it besides admins: a user name or a team namespace."""
    spec: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    """The current configuration (`ServiceSpec.to_document`, secrets sealed)."""
    status: Mapped[str] = mapped_column(sa.String(32))
    revision: Mapped[int | None] = mapped_column(default=None)
    """The revision that should serve; None before the first deploy succeeds or starts."""
    active_revision: Mapped[int | None] = mapped_column(default=None)
    paused: Mapped[bool] = mapped_column(default=False)
    deleting: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)

    __table_args__ = (
        # One live service per name; deleted ones keep their rows.
        sa.Index(
            "uq_control_services_live_name",
            "name",
            unique=True,
            sqlite_where=sa.text("deleted_at IS NULL"),
            postgresql_where=sa.text("deleted_at IS NULL"),
        ),
    )


class RevisionRow(Base):
    """An immutable revision: the image digest resolved at deploy time plus the configuration."""

    __tablename__ = "control_revisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[str] = mapped_column(
        sa.ForeignKey("control_services.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int]
    image: Mapped[str] = mapped_column(sa.String(255))
    """The reference as configured (`localhost:5000/team/app:1`)."""
    digest: Mapped[str | None] = mapped_column(sa.String(128))
    """The manifest digest it resolved to; None for a local image never pulled from a registry."""
    spec: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    operation_id: Mapped[str | None] = mapped_column(sa.String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (sa.UniqueConstraint("service_id", "number"),)


class OperationRow(Base):
    __tablename__ = "control_operations"

    seq: Mapped[int] = mapped_column(primary_key=True)
    """Creation order (newest first = highest first), also when timestamps tie."""
    id: Mapped[str] = mapped_column(sa.String(32), unique=True)
    service_id: Mapped[str] = mapped_column(
        sa.ForeignKey("control_services.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(sa.String(32))
    status: Mapped[str] = mapped_column(sa.String(32), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    """What the operation changes: a spec document, an image, a revision number."""
    revision: Mapped[int | None] = mapped_column(default=None)
    """The revision it deploys, once pinned."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    deadline: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    message: Mapped[str] = mapped_column(sa.Text, default="")
    """While in flight, where it stands ("waiting for app-2-1f2e3d: …"); then how it ended."""


class OperationLogRow(Base):
    __tablename__ = "control_operation_logs"

    id: Mapped[int] = mapped_column(primary_key=True)
    operation_seq: Mapped[int] = mapped_column(
        sa.ForeignKey("control_operations.seq", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    line: Mapped[str] = mapped_column(sa.Text)


class ServiceEventRow(Base):
    """Something that happened to a service outside any operation ("instance crashed, replaced")."""

    __tablename__ = "control_service_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[str] = mapped_column(
        sa.ForeignKey("control_services.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    kind: Mapped[str] = mapped_column(sa.String(32))
    instance: Mapped[str] = mapped_column(sa.String(80), default="")
    message: Mapped[str] = mapped_column(sa.Text)


class AutoScalingConfigurationRow(Base):
    """One revision of a shared autoscaling configuration (App Runner's
    AutoScalingConfiguration): immutable once written, so a service that uses it (its spec
    names `name:revision` and holds a copy of the values) never changes underfoot."""

    __tablename__ = "control_autoscaling_configurations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(32), index=True)
    revision: Mapped[int]
    owner: Mapped[str] = mapped_column(sa.String(64), index=True)
    min_size: Mapped[int]
    max_size: Mapped[int]
    max_concurrency: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    """Kept, like a deleted service's row, so that a revision number is never used twice:
    an old service revision that names `fast:3` still means those values."""

    __table_args__ = (sa.UniqueConstraint("name", "revision"),)


class CursorRow(Base):
    """How far the control room has acted on a durable log of another room's: `push` is the
    id of the last registry push whose auto-deploy decision has committed."""

    __tablename__ = "control_cursors"

    name: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    position: Mapped[int] = mapped_column(sa.BigInteger)
