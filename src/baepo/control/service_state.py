"""A service's desired state as one reconcile pass reads it from the database.

A pass over a service reads it once (`StateReader.read`): its row, its spec's bounds for the
autoscaler, its operation in flight (only one IN_PROGRESS is the planner's
`Desired.operation`; a PENDING one just keeps the pass busy) and how its current revision is
checked. Revisions are immutable, so each is read once and kept for the reconciler's life
(`StateReader.revision`): the router's checks, a starting instance's probes and its container
are all made from the cached copy.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from sqlalchemy.orm import Session

from baepo.control import records
from baepo.control.images import RegistryLink
from baepo.control.instances import Revision
from baepo.control.operations import OperationKind, OperationStatus
from baepo.control.planning import Desired, DesiredOperation
from baepo.control.scaling import Bounds
from baepo.control.tables import ServiceRow
from baepo.store import Database


@dataclass(frozen=True)
class ServiceState:
    """One service's desired state as read from the database for one pass."""

    service_id: str
    desired: Desired
    operation_id: str | None
    """The operation IN_PROGRESS, whose log a pass writes to (None: lines go to Baepo's log)."""
    in_flight: bool
    bounds: Bounds
    owner: str = ""


class StateReader:
    """Reads services' desired state and their revisions. Revisions are cached: call it from
    the event loop or its worker threads, one pass per service at a time."""

    def __init__(
        self,
        db: Database,
        sealer: records.Sealer,
        registry: RegistryLink,
        domain: str,
        drain_timeout_s: float,
    ) -> None:
        self._db = db
        self._sealer = sealer
        self._registry = registry
        self._domain = domain
        self._drain_timeout_s = drain_timeout_s
        self._revisions: dict[tuple[str, int], Revision] = {}

    def read(self, service_id: str) -> ServiceState | None:
        """The service's desired state; None if it is gone (deleted since it was listed)."""
        with self._db.session() as s:
            service = s.get(ServiceRow, service_id)
            if service is None or service.deleted_at is not None:
                return None
            spec = self._sealer.spec(service.spec)
            op = records.operation_in_flight(s, service_id)
            current = op if op is not None and op.status == OperationStatus.IN_PROGRESS else None
            check = "health check"
            if service.revision is not None:
                revision = self.revision(service_id, service.revision, s)
                check = f"health check ({revision.spec.health_check.describe()})"
            operation = None
            if current is not None:
                assert current.started_at is not None and current.deadline is not None
                operation = DesiredOperation(
                    current.id, OperationKind(current.kind), current.started_at, current.deadline
                )
            desired = Desired(
                service=service.name,
                hostnames=(f"{service.name}.{self._domain}", *spec.custom_domains),
                revision=service.revision,
                instances=spec.min_instances,
                max_concurrency=spec.max_concurrency,
                paused=service.paused,
                deleting=service.deleting,
                operation=operation,
                drain_timeout_s=self._drain_timeout_s,
                check=check,
            )
            bounds = Bounds(spec.min_instances, spec.max_instances, spec.max_concurrency)
            return ServiceState(
                service_id,
                desired,
                current.id if current else None,
                op is not None,
                bounds,
                service.owner,
            )

    def revision(self, service_id: str, number: int, session: Session | None = None) -> Revision:
        """The revision, read once. Within a session, read in it: a second connection per
        thread, with every worker thread doing the same, would empty the pool (it did, with
        200 services created at once) and each would wait for the others."""
        key = (service_id, number)
        cached = self._revisions.get(key)
        if cached is None:
            with contextlib.nullcontext(session) if session else self._db.session() as s:
                row = records.revision(s, service_id, number)
                run = self._registry.runnable(row.image, row.digest)
                cached = Revision(number, self._sealer.spec(row.spec), row.image, row.digest, run)
            self._revisions[key] = cached
        return cached

    async def known_revision(self, service_id: str, number: int) -> Revision | None:
        """The revision (cached after the first read), or None if the database has none."""
        cached = self._revisions.get((service_id, number))
        if cached is not None:
            return cached
        try:
            return await asyncio.to_thread(self.revision, service_id, number)
        except Exception:  # an instance of a revision we do not know: never healthy
            return None
