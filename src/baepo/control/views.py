"""What the facade hands out: plain, immutable views of services, revisions and operations.

Views never carry a secret's value (configurations are masked) and never a database row, so the
API can serialize them as they are (`dataclasses.asdict`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from baepo.control.instances import revision_of
from baepo.control.tables import (
    OperationLogRow,
    OperationRow,
    RevisionRow,
    ServiceEventRow,
    ServiceRow,
)


@dataclass(frozen=True)
class InstanceView:
    id: str
    """The instance id (`<service>-<revision>-<hex>`), also its server name in the route."""
    container: str
    revision: int | None
    state: str
    """The engine's state: running, exited, ..."""
    health: str
    """starting, healthy, unhealthy, or unknown (not yet probed). A process that does not
    lead answers what its router's checks find of a routed instance (see `routed_health`)."""
    address: str | None
    started_at: datetime | None
    exit_code: int | None


@dataclass(frozen=True)
class ServiceView:
    name: str
    owner: str
    """A user name or a team namespace: who may see and operate it besides admins."""
    status: str
    url: str
    revision: int | None
    """The revision that should serve (the one being deployed during a deployment)."""
    active_revision: int | None
    """The last revision that finished deploying."""
    config: dict[str, Any]
    """The configuration, secrets masked."""
    instances: tuple[InstanceView, ...]
    operation: str | None
    """The id of the operation in flight, if any."""
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ServiceIdentity:
    """Whose a live service is and since when: what a caller's reach is checked against,
    and what tells it from an earlier service of the same name."""

    name: str
    owner: str
    created_at: datetime


@dataclass(frozen=True)
class LogLine:
    at: datetime
    line: str


@dataclass(frozen=True)
class OperationView:
    id: str
    service: str
    kind: str
    status: str
    revision: int | None
    message: str
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    log: tuple[LogLine, ...] = ()


@dataclass(frozen=True)
class RevisionView:
    service: str
    number: int
    image: str
    digest: str | None
    active: bool
    config: dict[str, Any]
    operation: str | None
    created_at: datetime


@dataclass(frozen=True)
class EventView:
    at: datetime
    kind: str
    instance: str
    message: str


@dataclass(frozen=True)
class LogEntry:
    """One line of a service's logs (`baepo services logs`)."""

    at: datetime
    source: str
    """"application": an instance wrote it; "events": the service's event log."""
    stream: str
    """stdout or stderr; in the event log "operation" (a line of an operation's log) or the
    event's kind (crashed, removed, unhealthy)."""
    instance: str
    """The instance that wrote it or that it is about ("" for most operation lines)."""
    revision: int | None
    text: str
    operation: str | None = None
    """The operation whose log holds the line."""


def operation_view(
    op: OperationRow, service: str, log: Sequence[OperationLogRow] = ()
) -> OperationView:
    return OperationView(
        id=op.id,
        service=service,
        kind=op.kind,
        status=op.status,
        revision=op.revision,
        message=op.message,
        created_at=op.created_at,
        started_at=op.started_at,
        ended_at=op.ended_at,
        log=tuple(LogLine(row.at, row.line) for row in log),
    )


def revision_view(row: RevisionRow, service: ServiceRow, config: dict[str, Any]) -> RevisionView:
    return RevisionView(
        service=service.name,
        number=row.number,
        image=row.image,
        digest=row.digest,
        active=row.number == service.active_revision,
        config=config,
        operation=row.operation_id,
        created_at=row.created_at,
    )


def event_view(row: ServiceEventRow) -> EventView:
    return EventView(at=row.at, kind=row.kind, instance=row.instance, message=row.message)


def event_log_entries(
    service: str,
    lines: Sequence[tuple[OperationLogRow, OperationRow]],
    events: Sequence[ServiceEventRow],
) -> list[LogEntry]:
    """The service's event log as log entries, oldest first: its operations' lines and its
    events (`records.event_log`)."""
    entries = [
        LogEntry(row.at, "events", "operation", "", op.revision, row.line, operation=op.id)
        for row, op in lines
    ]
    for row in events:
        revision = revision_of(service, row.instance)
        entries.append(LogEntry(row.at, "events", row.kind, row.instance, revision, row.message))
    return sorted(entries, key=lambda entry: entry.at)
