"""The two ends of an operation: begin (PENDING → IN_PROGRESS) and finish (→ SUCCEEDED/FAILED).

Begin is where an operation's change becomes the service's desired state: the image is pulled
and its digest pinned in a new immutable revision (create, update of a field instances depend
on, deploy), or an earlier revision is chosen again (rollback, resume), or the service is marked
paused or being deleted. What the service looked like before is kept in the operation's payload
(`previous`) so that finishing a FAILED operation can put it back. Between the two, the
reconciler's passes do the work.

The pull runs outside any transaction; the revision and the status change commit together
afterwards, and only if the operation is still PENDING (a delete may have cancelled it). A crash
before that commit leaves the operation PENDING: the next reconciler begins it again.

Begin also settles who has a custom domain: two services may both have asked for one (requests
check the claims in flight, but not across two databases' worth of isolation rules), and the
operation that begins second fails there, before its configuration is in effect. A create that
fails so keeps its service, without the domain. A finished delete fails whatever else the
service still had in flight: nothing will ever begin it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from baepo.clock import Clock
from baepo.control import records
from baepo.control.images import BadReference, ImageName, RegistryLink
from baepo.control.operations import OperationKind, OperationStatus, ServiceStatus
from baepo.control.tables import OperationRow, ServiceRow
from baepo.runtime import Engine, EngineError, EngineUnavailable, ImageNotFound, PullFailed
from baepo.store import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Timing:
    """How long things may take, and how often the reconciler looks."""

    deploy_timeout_s: float = 600.0
    """A deploying operation's new revision must be healthy within this."""
    operation_timeout_s: float = 300.0
    """Pause and delete must be done within this."""
    drain_timeout_s: float = 30.0
    stop_timeout_s: float = 10.0
    """SIGTERM, then SIGKILL after this."""
    poll_s: float = 0.25
    """The pass interval while something moves (a deploy, a drain, a starting instance)."""
    idle_s: float = 2.0
    """The pass interval otherwise (events wake the loop earlier)."""
    log_tail: int = 30
    """Lines of a failed instance's log copied into the operation's log."""
    pass_wait_s: float = 5.0
    """How long a pass waits for one service's work (an engine call that hangs on a hostile
    container): a service still at work then costs only itself, not every other service."""


@dataclass(frozen=True)
class _Pending:
    op_id: str
    kind: OperationKind
    payload: dict[str, Any]
    service_id: str
    spec: dict[str, Any]
    revision: int | None
    created_at: datetime
    owner: str


@dataclass(frozen=True)
class _Pinned:
    image: str
    digest: str | None
    note: str


class PullError(Exception):
    pass


class Lifecycle:
    def __init__(
        self,
        db: Database,
        engine: Engine,
        sealer: records.Sealer,
        clock: Clock,
        registry: RegistryLink,
        timing: Timing,
        may_pull: Callable[[str, str], bool] | None = None,
    ) -> None:
        self._db = db
        # (owner, repository) → whether the owner may pull it from Baepo's registry now: asked
        # again at each begin, for pushes and redeploys too (rights change; the engine pulls
        # with Baepo's own credentials).
        self._may_pull = may_pull
        self._engine = engine
        self._sealer = sealer
        self._clock = clock
        self._registry = registry
        self._timing = timing
        # Begins of different services run in parallel threads; a domain's claims span services,
        # which a service's row lock does not cover on PostgreSQL.
        self._begin_lock = threading.Lock()

    # -- begin ---------------------------------------------------------------------------

    async def begin_next(self, service_id: str) -> bool:
        """Begin the service's oldest pending operation unless one is in progress."""
        pending = await asyncio.to_thread(self._next_pending, service_id)
        if pending is None:
            return False
        document = dict(pending.payload.get("spec") or pending.spec)
        pinned: _Pinned | None = None
        try:
            pull = self._what_to_pull(pending, document)
            refused = self._refused(pending.owner, pull[0]) if pull is not None else None
            if refused is not None:
                await asyncio.to_thread(self._fail_to_begin, pending, refused)
                return True
            if pull is not None:
                document["image"] = pull[0]
                pinned = await asyncio.to_thread(self._pull, *pull)
        except EngineUnavailable as exc:
            # Nothing is wrong with the operation: wait for the engine, for a while.
            waited = (self._clock.now() - pending.created_at).total_seconds()
            if waited < self._timing.deploy_timeout_s:
                log.warning("cannot begin %s yet: %s", pending.op_id, exc)
                return False
            await asyncio.to_thread(self._fail_to_begin, pending, f"the engine is away: {exc}")
            return True
        except PullError as exc:
            await asyncio.to_thread(self._fail_to_begin, pending, str(exc))
            return True
        await asyncio.to_thread(self._begin, pending, document, pinned)
        return True

    def _next_pending(self, service_id: str) -> _Pending | None:
        with self._db.session() as s, s.begin():
            op = records.operation_in_flight(s, service_id)
            if op is None or op.status != OperationStatus.PENDING.value:
                return None
            service = s.get(ServiceRow, service_id)
            assert service is not None
            return _Pending(
                op.id, OperationKind(op.kind), dict(op.payload), service.id, service.spec,
                service.revision, op.created_at, service.owner,
            )  # fmt: skip

    def _what_to_pull(
        self, pending: _Pending, document: dict[str, Any]
    ) -> tuple[str, str | None] | None:
        """(image as configured, digest wanted or None for the tag) — or None: no new revision."""
        kind = pending.kind
        if kind is OperationKind.START_DEPLOYMENT:
            return pending.payload.get("image") or document["image"], pending.payload.get("digest")
        if kind is OperationKind.CREATE_SERVICE:
            return document["image"], None
        if kind is OperationKind.UPDATE_SERVICE:
            if pending.revision is None:
                return document["image"], None
            with self._db.session() as s:
                current = records.revision(s, pending.service_id, pending.revision)
                before = self._sealer.spec(current.spec)
            if not before.same_revision(self._sealer.spec(document)):
                return document["image"], None
        return None

    def _refused(self, owner: str, image: str) -> str | None:
        """Why `owner`'s service may not run `image` of Baepo's registry now, or None."""
        try:
            name = ImageName.parse(image)
        except BadReference:
            return None  # `_pull` says why
        if self._may_pull is None or not self._registry.owns(name):
            return None
        if self._may_pull(owner, name.path):
            return None
        return f"{owner} may not pull {name.path} (it is neither theirs nor public)"

    def _pull(self, image: str, digest: str | None) -> _Pinned:
        try:
            name = ImageName.parse(image)
        except BadReference as exc:  # stored before the grammar was as strict as it is now
            raise PullError(f"{image!r} is not an image reference: {exc}") from exc
        ref = self._registry.runnable(image, digest)
        auth = self._registry.auth_for(name)
        try:
            pulled = self._engine.pull(ref, auth)
        except (ImageNotFound, PullFailed) as exc:
            if not name.domain and self._present(image):
                return _Pinned(image, None, f"{image} is not in a registry; using the local image")
            raise PullError(str(exc)) from exc  # "cannot pull <ref>: …", the engine's words
        except EngineUnavailable:
            raise
        except EngineError as exc:
            raise PullError(f"cannot pull {ref}: {exc}") from exc
        found = pulled.digest or digest
        return _Pinned(image, found, f"pulled {ref}" + (f" ({found})" if found else ""))

    def _present(self, image: str) -> bool:
        try:
            return self._engine.image_present(image)
        except EngineError:
            return False

    def _begin(self, pending: _Pending, document: dict[str, Any], pinned: _Pinned | None) -> None:
        now = self._clock.now()
        with self._begin_lock, self._db.session() as s, s.begin():
            records.lock_service_id(s, pending.service_id)
            op = records.operation_by_id(s, pending.op_id)
            if op.status != OperationStatus.PENDING.value:
                return  # cancelled while we pulled
            service = s.get(ServiceRow, pending.service_id)
            assert service is not None
            kind = pending.kind
            if kind.deploys and kind is not OperationKind.RESUME_SERVICE and service.paused:
                # Queued behind a pause: nothing would start, and "succeeding" would make an
                # unchecked revision the one `resume` brings back.
                message = f"{service.name} was paused meanwhile; resume it, then deploy"
                self._end(s, op, now, OperationStatus.FAILED, message)
                return
            if self._domain_taken(s, op, service, document):
                return
            op.payload = {
                **op.payload,
                "previous": {
                    "spec": service.spec,
                    "revision": service.revision,
                    "paused": service.paused,
                },
            }
            if pinned is not None:
                records.log(s, op, now, pinned.note)
                revision = records.add_revision(
                    s, service, document, pinned.image, pinned.digest, op.id, now
                )
                service.spec = document
                service.revision = revision.number
                records.log(s, op, now, f"revision {revision.number} pinned")
            elif kind is OperationKind.UPDATE_SERVICE:
                service.spec = document
                records.log(s, op, now, f"configuration updated; revision {service.revision} stays")
            elif kind is OperationKind.ROLLBACK_SERVICE:
                target = records.revision(s, service.id, int(op.payload["revision"]))
                service.spec = target.spec
                service.revision = target.number
                records.log(s, op, now, f"rolling back to revision {target.number}")
            elif kind is OperationKind.RESUME_SERVICE:
                service.paused = False
                service.revision = service.active_revision
                records.log(s, op, now, f"resuming revision {service.revision}")
            elif kind is OperationKind.PAUSE_SERVICE:
                service.paused = True
            elif kind is OperationKind.DELETE_SERVICE:
                service.deleting = True
            timeout = (
                self._timing.deploy_timeout_s if kind.deploys else self._timing.operation_timeout_s
            )
            op.status = OperationStatus.IN_PROGRESS.value
            op.started_at = now
            op.deadline = now + timedelta(seconds=timeout)
            op.revision = service.revision if kind.deploys else None
            service.updated_at = now
            records.log(s, op, now, f"{kind.value} in progress (deadline in {timeout:g} s)")

    def _domain_taken(
        self, s: Session, op: OperationRow, service: ServiceRow, document: dict[str, Any]
    ) -> bool:
        """Fail `op` if the configuration it brings has a domain another service has."""
        kind = OperationKind(op.kind)
        if kind is OperationKind.ROLLBACK_SERVICE:
            document = records.revision(s, service.id, int(op.payload["revision"])).spec
        elif kind not in (OperationKind.CREATE_SERVICE, OperationKind.UPDATE_SERVICE):
            return False
        taken = {
            host: owner
            for host in sorted(records.domains(document))
            if (owner := records.domain_owner(s, host, service.name, begun=True)) is not None
        }
        if not taken:
            return False
        message = "; ".join(f"{host} is already used by {owner}" for host, owner in taken.items())
        if kind is OperationKind.CREATE_SERVICE:
            # Nothing to go back to: the service stays, without what it cannot have.
            kept = [h for h in service.spec.get("custom_domains") or () if h not in taken]
            service.spec = {**service.spec, "custom_domains": kept}
            message += f"; removed from {service.name}'s custom domains"
        self._end(s, op, self._clock.now(), OperationStatus.FAILED, message)
        return True

    def _fail_to_begin(self, pending: _Pending, message: str) -> None:
        now = self._clock.now()
        with self._db.session() as s, s.begin():
            records.lock_service_id(s, pending.service_id)
            op = records.operation_by_id(s, pending.op_id)
            if op.status != OperationStatus.PENDING.value:
                return
            self._end(s, op, now, OperationStatus.FAILED, message)

    # -- finish --------------------------------------------------------------------------

    def finish(
        self,
        operation_id: str,
        succeeded: bool,
        message: str,
        lines: list[str],
        revert: bool = True,
    ) -> None:
        """End an IN_PROGRESS operation; on failure (and `revert`) undo its desired change."""
        now = self._clock.now()
        with self._db.session() as s, s.begin():
            records.lock_service_of(s, operation_id)
            op = records.operation_by_id(s, operation_id)
            if op.status != OperationStatus.IN_PROGRESS.value:
                return
            service = s.get(ServiceRow, op.service_id)
            assert service is not None
            for line in lines:
                records.log(s, op, now, line)
            kind = OperationKind(op.kind)
            previous: dict[str, Any] = op.payload.get("previous") or {}
            if succeeded:
                if kind.deploys:
                    service.active_revision = service.revision
                elif kind is OperationKind.DELETE_SERVICE:
                    service.deleted_at = now
                    for other in records.operations_in_flight(s, service.id):
                        if other.id != op.id:  # asked for meanwhile; it can never begin now
                            self._end(
                                s, other, now, OperationStatus.FAILED, "the service was deleted"
                            )
            elif revert and kind is not OperationKind.DELETE_SERVICE and previous:
                service.spec = previous["spec"]
                service.revision = previous["revision"]
                service.paused = bool(previous["paused"])
                if kind.deploys and service.active_revision is not None:
                    message += f"; revision {service.active_revision} keeps serving"
            elif kind.deploys:
                service.active_revision = service.revision
            status = OperationStatus.SUCCEEDED if succeeded else OperationStatus.FAILED
            self._end(s, op, now, status, message)

    def _end(
        self,
        s: Session,
        op: OperationRow,
        now: datetime,
        status: OperationStatus,
        message: str,
    ) -> None:
        op.status = status.value
        op.ended_at = now
        op.message = message
        records.log(s, op, now, f"{status.value}: {message}")
        service = s.get(ServiceRow, op.service_id)
        assert service is not None
        s.flush()
        settle_status(s, service, now)
        log.info("operation %s (%s) of %s: %s: %s", op.id, op.kind, service.name, status, message)


def settle_status(s: Session, service: ServiceRow, now: datetime) -> None:
    """The service's status from its desired state and whether an operation is in flight."""
    if records.operations_in_flight(s, service.id):
        status = ServiceStatus.OPERATION_IN_PROGRESS
    elif service.deleted_at is not None:
        status = ServiceStatus.DELETED
    elif service.deleting:
        status = ServiceStatus.DELETE_FAILED
    elif service.paused:
        status = ServiceStatus.PAUSED
    elif service.active_revision is None:
        status = ServiceStatus.CREATE_FAILED
    else:
        status = ServiceStatus.RUNNING
    service.status = status.value
    service.updated_at = now
