"""Auto-deploy: a push to Baepo's registry of the tag a service tracks starts a deployment.

A service tracks its image's tag when `auto_deploy` is on and the image lives in Baepo's
registry (`RegistryLink.tracks`). A push starts a START_DEPLOYMENT operation that pins exactly
the pushed digest, unless that digest is already what the service runs or is about to run
(a push of the same image again does nothing). If another operation is in flight, the
deployment waits as PENDING; a later push replaces a deployment still waiting.
A paused service ignores pushes (resume deploys what was last active), and so does a service
being deleted, or about to be.

Level-triggered from the registry's durable push log (`PushLog`): the reconciler reads the
pushes after its cursor (`control_cursors.push`) and decides each one in a transaction that
also advances the cursor past it, so a push is acted on exactly once, even if Baepo stops
between the push and its deployment. The in-process `ImagePushed` event only wakes the loop.
A new database starts the cursor at 0; the migration that brought the cursor started it at
the newest push (those before it were decided when they happened).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sqlalchemy.orm import Session

from baepo.clock import Clock
from baepo.control import records
from baepo.control.images import BadReference, ImageName, RegistryLink
from baepo.control.operations import OperationKind, OperationStatus
from baepo.control.tables import CursorRow, ServiceRow

PUSH_TRIGGER = "push"
PUSH_CURSOR = "push"


class Pushed(Protocol):
    """A manifest pushed to Baepo's registry, as the registry's push log records it."""

    @property
    def id(self) -> int: ...

    @property
    def repository(self) -> str: ...

    @property
    def tag(self) -> str | None: ...

    @property
    def digest(self) -> str: ...

    @property
    def actor(self) -> str: ...


class PushLog(Protocol):
    """The registry's durable log of pushes (`Registry` is one); blocking calls."""

    def pushes_after(self, position: int, limit: int = 100) -> Sequence[Pushed]:
        """Pushes with an id above `position`, oldest first."""
        ...


def cursor(s: Session) -> int:
    """The id of the last push decided (0 before the first)."""
    row = s.get(CursorRow, PUSH_CURSOR)
    return 0 if row is None else row.position


def decide_all(
    s: Session,
    pushes: Sequence[Pushed],
    sealer: records.Sealer,
    registry: RegistryLink,
    clock: Clock,
) -> list[str]:
    """Decide `pushes` (oldest first) and move the cursor past the last, in the caller's
    transaction; the ids of the operations started or changed. Pushes at or before the cursor
    (decided already) do nothing. The services are read once for the batch, under the lock
    their other changes take."""
    row = s.get(CursorRow, PUSH_CURSOR, with_for_update=True)
    if row is None:
        row = CursorRow(name=PUSH_CURSOR, position=0)
        s.add(row)
    fresh = [push for push in pushes if push.id > row.position]
    records.lock_live_services(s)  # decided one at a time with the services' other changes
    tracking = _tracking(s, registry)
    touched: list[str] = []
    for push in fresh:
        for service, image in tracking:
            if not registry.tracks(image, push.repository, push.tag):
                continue
            if _delete_requested(s, service):
                continue
            op_id = _deploy(s, service, push, clock)
            if op_id is not None and op_id not in touched:
                touched.append(op_id)
    if fresh:
        row.position = fresh[-1].id
    return touched


def _tracking(s: Session, registry: RegistryLink) -> list[tuple[ServiceRow, ImageName]]:
    """The live services that deploy on a push of their image's tag, with that image."""
    found: list[tuple[ServiceRow, ImageName]] = []
    for service in records.live_services(s):
        if service.paused or service.deleting or not service.spec.get("auto_deploy"):
            continue
        try:
            image = ImageName.parse(service.spec["image"])
        except BadReference:
            continue
        if registry.owns(image) and image.digest is None:
            found.append((service, image))
    return found


def _deploy(s: Session, service: ServiceRow, event: Pushed, clock: Clock) -> str | None:
    now = clock.now()
    line = f"{event.repository}:{event.tag} pushed ({event.digest}) by {event.actor or 'someone'}"
    payload = {"trigger": PUSH_TRIGGER, "digest": event.digest}
    for op in records.operations_in_flight(s, service.id):
        if op.status == OperationStatus.PENDING.value and op.payload.get("trigger") == PUSH_TRIGGER:
            if op.payload.get("digest") == event.digest:
                return None
            # A newer push replaces the one still waiting, even if it brings back what runs:
            # the tag points there now.
            op.payload = payload
            records.log(s, op, now, line + "; deploying this one instead")
            return op.id
    if event.digest in _digests_underway(s, service):
        return None
    op = records.add_operation(
        s, service, OperationKind.START_DEPLOYMENT, now, payload, line=line + "; deploying it"
    )
    return op.id


def _delete_requested(s: Session, service: ServiceRow) -> bool:
    return any(
        op.kind == OperationKind.DELETE_SERVICE.value
        for op in records.operations_in_flight(s, service.id)
    )


def _digests_underway(s: Session, service: ServiceRow) -> set[str]:
    """Digests the service runs, or will once what is in flight is done."""
    digests: set[str] = set()
    if service.revision is not None:
        current = records.revision(s, service.id, service.revision)
        if current.digest:
            digests.add(current.digest)
    for op in records.operations_in_flight(s, service.id):
        if op.revision is not None:
            pinned = records.revision(s, service.id, op.revision)
            if pinned.digest:
                digests.add(pinned.digest)
        elif op.payload.get("digest"):
            digests.add(op.payload["digest"])
    return digests
