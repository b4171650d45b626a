"""Reading and writing the control room's rows, shared by the facade and the reconciler.

Functions take an open `Session` and leave the transaction to the caller, so one unit of work
(create a service and its first operation; pin a revision and start an operation) commits
whole or not at all.

A unit of work that decides from what it reads (is an operation in flight? is this domain
free?) starts with a `lock_*` call: a write to the service's row as the transaction's first
statement. On SQLite that takes the database's write lock before anything is read (a later
writer waits for the busy timeout, then reads what the first one committed; a read *before*
the write would instead fail with SQLITE_BUSY_SNAPSHOT), on PostgreSQL the row's lock. So one
change per service is decided at a time.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from baepo.control.errors import (
    Conflict,
    ControlUnavailable,
    OperationNotFound,
    RevisionNotFound,
    ServiceNotFound,
)
from baepo.control.operations import OperationKind, OperationStatus, ServiceStatus
from baepo.control.spec import ServiceSpec
from baepo.control.tables import (
    OperationLogRow,
    OperationRow,
    RevisionRow,
    ServiceEventRow,
    ServiceRow,
)
from baepo.control.vault import SecretBox
from baepo.store import Database, StoreError

IN_FLIGHT = (OperationStatus.PENDING.value, OperationStatus.IN_PROGRESS.value)


def new_id() -> str:
    return uuid.uuid4().hex


class Sealer:
    """Spec documents to and from the database, secrets sealed with the box."""

    def __init__(self, box: SecretBox) -> None:
        self._box = box

    def document(self, spec: ServiceSpec) -> dict[str, Any]:
        return spec.to_document(self._box.seal)

    def spec(self, document: dict[str, Any]) -> ServiceSpec:
        return ServiceSpec.from_document(document, self._box.open)


@contextmanager
def session(db: Database) -> Iterator[Session]:
    """A session of the facades', SQLAlchemy's errors mapped: `Conflict` for a constraint a
    concurrent change won, `ControlUnavailable` for the rest."""
    try:
        with db.session() as s:
            yield s
    except IntegrityError as exc:
        raise Conflict(f"the change clashed with another one made meanwhile: {exc}") from exc
    except (SQLAlchemyError, StoreError) as exc:
        raise ControlUnavailable(f"the state database cannot be used: {exc}") from exc


def lock_service(s: Session, name: str) -> None:
    """Serialize with every other change of the live service `name` (see above)."""
    _touch(s, (ServiceRow.name == name) & ServiceRow.deleted_at.is_(None))


def lock_service_id(s: Session, service_id: str) -> None:
    _touch(s, ServiceRow.id == service_id)


def lock_service_of(s: Session, operation_id: str) -> None:
    owner = sa.select(OperationRow.service_id).where(OperationRow.id == operation_id)
    _touch(s, ServiceRow.id == owner.scalar_subquery())


def lock_live_services(s: Session) -> None:
    _touch(s, ServiceRow.deleted_at.is_(None))


def _touch(s: Session, where: sa.ColumnElement[bool]) -> None:
    s.execute(
        sa.update(ServiceRow).where(where).values(updated_at=ServiceRow.updated_at),
        execution_options={"synchronize_session": False},
    )


def live_service(s: Session, name: str) -> ServiceRow:
    row = s.scalar(
        sa.select(ServiceRow).where(ServiceRow.name == name, ServiceRow.deleted_at.is_(None))
    )
    if row is None:
        raise ServiceNotFound(f"no service named {name!r}")
    return row


def live_services(s: Session) -> Sequence[ServiceRow]:
    return s.scalars(
        sa.select(ServiceRow).where(ServiceRow.deleted_at.is_(None)).order_by(ServiceRow.name)
    ).all()


def live_service_marks(s: Session) -> list[tuple[str, str, tuple[object, ...], int]]:
    """(id, name, mark, operations in flight) of every live service, in one query. The mark
    changes with anything a reconcile pass reads from the database for it: a change of the
    service's row, a new operation, an operation that starts or ends."""
    newest = (
        sa.select(sa.func.max(OperationRow.seq))
        .where(OperationRow.service_id == ServiceRow.id)
        .scalar_subquery()
    )
    in_flight = (
        sa.select(sa.func.count(OperationRow.seq))
        .where(OperationRow.service_id == ServiceRow.id, OperationRow.status.in_(IN_FLIGHT))
        .scalar_subquery()
    )
    rows = s.execute(
        sa.select(
            ServiceRow.id,
            ServiceRow.name,
            ServiceRow.updated_at,
            ServiceRow.revision,
            ServiceRow.active_revision,
            ServiceRow.paused,
            ServiceRow.deleting,
            ServiceRow.status,
            newest,
            in_flight,
        )
        .where(ServiceRow.deleted_at.is_(None))
        .order_by(ServiceRow.name)
    ).all()
    return [(row[0], row[1], tuple(row[2:]), row[-1]) for row in rows]


def operation_in_flight(s: Session, service_id: str) -> OperationRow | None:
    """The operation in progress, else the oldest pending one."""
    return s.scalar(
        sa.select(OperationRow)
        .where(OperationRow.service_id == service_id, OperationRow.status.in_(IN_FLIGHT))
        .order_by(
            sa.case((OperationRow.status == OperationStatus.IN_PROGRESS.value, 0), else_=1),
            OperationRow.seq,
        )
        .limit(1)
    )


def operations_in_flight(s: Session, service_id: str) -> Sequence[OperationRow]:
    return s.scalars(
        sa.select(OperationRow)
        .where(OperationRow.service_id == service_id, OperationRow.status.in_(IN_FLIGHT))
        .order_by(OperationRow.seq)
    ).all()


def add_operation(
    s: Session,
    service: ServiceRow,
    kind: OperationKind,
    now: datetime,
    payload: dict[str, Any] | None = None,
    line: str = "",
) -> OperationRow:
    op = OperationRow(
        id=new_id(),
        service_id=service.id,
        kind=kind.value,
        status=OperationStatus.PENDING.value,
        payload=payload or {},
        created_at=now,
    )
    s.add(op)
    s.flush()
    service.status = ServiceStatus.OPERATION_IN_PROGRESS.value
    service.updated_at = now
    log(s, op, now, line or f"{kind.value} requested")
    return op


def log(s: Session, op: OperationRow, at: datetime, line: str) -> None:
    s.add(OperationLogRow(operation_seq=op.seq, at=at, line=line))


def operation_by_id(s: Session, operation_id: str) -> OperationRow:
    op = s.scalar(sa.select(OperationRow).where(OperationRow.id == operation_id))
    if op is None:
        raise OperationNotFound(f"no operation {operation_id!r}")
    return op


def operation_log(s: Session, op: OperationRow) -> Sequence[OperationLogRow]:
    return s.scalars(
        sa.select(OperationLogRow)
        .where(OperationLogRow.operation_seq == op.seq)
        .order_by(OperationLogRow.id)
    ).all()


def operations(s: Session, service_id: str) -> Sequence[OperationRow]:
    """Newest first."""
    return s.scalars(
        sa.select(OperationRow)
        .where(OperationRow.service_id == service_id)
        .order_by(OperationRow.seq.desc())
    ).all()


def revision(s: Session, service_id: str, number: int) -> RevisionRow:
    row = s.scalar(
        sa.select(RevisionRow).where(
            RevisionRow.service_id == service_id, RevisionRow.number == number
        )
    )
    if row is None:
        raise RevisionNotFound(f"the service has no revision {number}")
    return row


def revisions(s: Session, service_id: str) -> Sequence[RevisionRow]:
    """Newest first."""
    return s.scalars(
        sa.select(RevisionRow)
        .where(RevisionRow.service_id == service_id)
        .order_by(RevisionRow.number.desc())
    ).all()


def images_in_use(s: Session) -> list[tuple[str, str | None]]:
    """(image reference, pinned digest or None) of every revision of every live service (the
    active one and those kept for a rollback), of the image each is configured with, and of
    what each operation in flight is about to deploy (its revision does not exist yet)."""
    live = ServiceRow.deleted_at.is_(None)
    pinned = s.execute(
        sa.select(RevisionRow.image, RevisionRow.digest)
        .join(ServiceRow, RevisionRow.service_id == ServiceRow.id)
        .where(live)
    ).all()
    configured = s.scalars(sa.select(ServiceRow.spec).where(live)).all()
    found: list[tuple[str, str | None]] = [(image, digest) for image, digest in pinned]
    found += [(spec["image"], None) for spec in configured if isinstance(spec.get("image"), str)]
    in_flight = s.execute(
        sa.select(OperationRow.payload, ServiceRow.spec)
        .join(ServiceRow, OperationRow.service_id == ServiceRow.id)
        .where(live, OperationRow.status.in_(IN_FLIGHT))
    ).all()
    for payload, spec in in_flight:
        found += _images_to_deploy(payload, spec)
    return found


def _images_to_deploy(
    payload: dict[str, Any], spec: dict[str, Any]
) -> list[tuple[str, str | None]]:
    """The images an operation's payload names: a deploy's image (or the configured one) with
    the digest a push pinned, and the image of a spec it is about to apply."""
    images: list[tuple[str, str | None]] = []
    image = payload.get("image") or spec.get("image")
    if isinstance(image, str) and (payload.get("image") or payload.get("digest")):
        images.append((image, payload.get("digest")))
    document = payload.get("spec") or {}
    if isinstance(document.get("image"), str):
        images.append((document["image"], None))
    return images


def add_revision(
    s: Session,
    service: ServiceRow,
    document: dict[str, Any],
    image: str,
    digest: str | None,
    operation_id: str,
    now: datetime,
) -> RevisionRow:
    last = s.scalar(
        sa.select(sa.func.max(RevisionRow.number)).where(RevisionRow.service_id == service.id)
    )
    row = RevisionRow(
        service_id=service.id,
        number=(last or 0) + 1,
        image=image,
        digest=digest,
        spec=document,
        operation_id=operation_id,
        created_at=now,
    )
    s.add(row)
    s.flush()
    return row


def record_event(
    s: Session, service_id: str, at: datetime, kind: str, message: str, instance: str = ""
) -> None:
    s.add(
        ServiceEventRow(service_id=service_id, at=at, kind=kind, instance=instance, message=message)
    )


def events(s: Session, service_id: str, limit: int = 200) -> Sequence[ServiceEventRow]:
    """Newest first."""
    return s.scalars(
        sa.select(ServiceEventRow)
        .where(ServiceEventRow.service_id == service_id)
        .order_by(ServiceEventRow.id.desc())
        .limit(limit)
    ).all()


def event_log(
    s: Session, service_id: str, since: datetime | None, limit: int
) -> tuple[list[tuple[OperationLogRow, OperationRow]], Sequence[ServiceEventRow]]:
    """The service's last `limit` operation log lines and last `limit` events at or after
    `since`, newest first: its event log, before they are merged."""
    lines = (
        sa.select(OperationLogRow, OperationRow)
        .join(OperationRow, OperationRow.seq == OperationLogRow.operation_seq)
        .where(OperationRow.service_id == service_id)
        .order_by(OperationLogRow.id.desc())
        .limit(limit)
    )
    events = (
        sa.select(ServiceEventRow)
        .where(ServiceEventRow.service_id == service_id)
        .order_by(ServiceEventRow.id.desc())
        .limit(limit)
    )
    if since is not None:
        lines = lines.where(OperationLogRow.at >= since)
        events = events.where(ServiceEventRow.at >= since)
    return [(row, op) for row, op in s.execute(lines)], s.scalars(events).all()


def domain_owner(s: Session, host: str, except_service: str, *, begun: bool = False) -> str | None:
    """The live service other than `except_service` that claims `host` as a custom domain.

    A service claims the domains of its configuration and those an operation in flight may
    still leave it with: the configuration it asks for, and the one a failure puts back. With
    `begun`, only what is in effect counts (the claims are settled as operations begin): a
    pending operation's configuration, and that of a service whose creation waits, do not.
    """
    for row in live_services(s):
        if row.name != except_service and host in _claims(s, row, begun):
            return row.name
    return None


def _claims(s: Session, service: ServiceRow, begun: bool) -> set[str]:
    return set().union(*(domains(d) for d in claimed_documents(s, service, begun=begun)))


def claimed_documents(
    s: Session, service: ServiceRow, *, begun: bool = False
) -> list[dict[str, Any]]:
    """The spec documents a live service is in, or may be left in by an operation in flight:
    its own, the one an operation asks for and the one a failure puts back. With `begun`,
    only those in effect (a pending operation's, and a service whose creation waits, count
    for nothing)."""
    return _documents(service, operations_in_flight(s, service.id), begun)


def every_claimed_document(s: Session) -> list[tuple[ServiceRow, list[dict[str, Any]]]]:
    """`claimed_documents` of every live service, in two queries whatever their number."""
    services = live_services(s)
    in_flight: dict[str, list[OperationRow]] = {}
    ops = s.scalars(
        sa.select(OperationRow)
        .join(ServiceRow, ServiceRow.id == OperationRow.service_id)
        .where(ServiceRow.deleted_at.is_(None), OperationRow.status.in_(IN_FLIGHT))
        .order_by(OperationRow.seq)
    )
    for op in ops:
        in_flight.setdefault(op.service_id, []).append(op)
    return [(row, _documents(row, in_flight.get(row.id, []), False)) for row in services]


def _documents(
    service: ServiceRow, in_flight: Sequence[OperationRow], begun: bool
) -> list[dict[str, Any]]:
    found: list[dict[str, Any] | None] = []
    for op in in_flight:
        pending = op.status == OperationStatus.PENDING.value
        if begun and pending and op.kind == OperationKind.CREATE_SERVICE.value:
            return []
        if not (begun and pending):
            found.append(op.payload.get("spec"))
        found.append((op.payload.get("previous") or {}).get("spec"))
    return [d for d in (*found, service.spec) if d]


def domains(document: dict[str, Any] | None) -> set[str]:
    """The custom domains a spec document lists."""
    return set((document or {}).get("custom_domains") or ())
