"""Auto-deploy: a push to Baepo's registry of the tag a service tracks starts a deployment.

A service tracks its image's tag when `auto_deploy` is on and the image lives in Baepo's
registry (`RegistryLink.tracks`). A push starts a START_DEPLOYMENT operation that pins exactly
the pushed digest, unless that digest is already what the service runs or is about to run
(a push of the same image again does nothing). If another operation is in flight, the
deployment waits as PENDING; a later push replaces a deployment still waiting.
A paused service ignores pushes (resume deploys what was last active), and so does a service
being deleted, or about to be.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from baepo.clock import Clock
from baepo.control import records
from baepo.control.images import BadReference, ImageName, RegistryLink
from baepo.control.operations import OperationKind, OperationStatus
from baepo.control.tables import ServiceRow
from baepo.events import ImagePushed

PUSH_TRIGGER = "push"


def auto_deploy(
    s: Session,
    event: ImagePushed,
    sealer: records.Sealer,
    registry: RegistryLink,
    clock: Clock,
) -> list[str]:
    """Start (or refresh) deployments for `event`; the ids of operations created or changed."""
    touched: list[str] = []
    records.lock_live_services(s)  # decided one at a time with the services' other changes
    for service in records.live_services(s):
        if service.paused or service.deleting or not service.spec.get("auto_deploy"):
            continue
        if _delete_requested(s, service):
            continue
        try:
            image = ImageName.parse(service.spec["image"])
        except BadReference:
            continue
        if not registry.tracks(image, event.repository, event.tag):
            continue
        op_id = _deploy(s, service, event, clock)
        if op_id is not None:
            touched.append(op_id)
    return touched


def _deploy(s: Session, service: ServiceRow, event: ImagePushed, clock: Clock) -> str | None:
    if event.digest in _digests_underway(s, service):
        return None
    now = clock.now()
    line = f"{event.repository}:{event.tag} pushed ({event.digest}) by {event.actor or 'someone'}"
    payload = {"trigger": PUSH_TRIGGER, "digest": event.digest}
    for op in records.operations_in_flight(s, service.id):
        if op.status == OperationStatus.PENDING.value and op.payload.get("trigger") == PUSH_TRIGGER:
            op.payload = payload  # a newer push replaces the one still waiting
            records.log(s, op, now, line + "; deploying this one instead")
            return op.id
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
