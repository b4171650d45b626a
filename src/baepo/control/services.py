"""`Services`: the control room's facade, what the API and the CLI call.

Every change is an operation: the call validates, records the operation as PENDING and returns
it at once; the reconciler does the work (see `operations.py` for the state machine). Reads
come from the database, plus the engine for the instances a service runs now.

Changes of one service are decided one at a time: each transaction starts by writing the
service's row (`records.lock_service`), so a request made meanwhile waits, then finds the first
one's operation in flight. A deployment then waits its turn (PENDING, behind the operations
before it: its image is resolved when it begins, so nothing it decides goes stale); any other
change is refused (`OperationInProgress`, naming the operation to wait for), because it is
computed from a configuration the operation in flight may still change or put back.

Every method takes the `caller` (`callers.py`, default `SYSTEM`): a service it does not reach
answers as if it did not exist, and it lists only those it reaches.

Foreign errors stop here: SQLAlchemy's become `ControlUnavailable`, or `Conflict` for a
constraint a concurrent change won (`ServiceExists` for a name); an engine that does not answer
leaves `instances` empty.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from baepo.clock import Clock
from baepo.control import records
from baepo.control.autoscaling_configurations import AutoScalingConfigurations, attach
from baepo.control.callers import OWNER_PATTERN, SYSTEM, Caller
from baepo.control.errors import (
    Conflict,
    InvalidServiceSpec,
    InvalidServiceState,
    OperationInProgress,
    OperationNotFound,
    ServiceExists,
    ServiceNotFound,
)
from baepo.control.images import RegistryLink, validate_image
from baepo.control.instances import LABEL_INSTALLATION
from baepo.control.logkeeper import LogKeeper
from baepo.control.operations import OperationKind, OperationStatus, ServiceStatus
from baepo.control.planning import Health
from baepo.control.quotas import Quota
from baepo.control.service_logs import EventLog, LogFollower, LogQuery, ServiceLogs
from baepo.control.spec import ServiceSpec, SpecChange
from baepo.control.tables import OperationRow, ServiceRow
from baepo.control.vault import SecretBox
from baepo.control.views import (
    EventView,
    InstanceView,
    LogEntry,
    OperationView,
    RevisionView,
    ServiceIdentity,
    ServiceView,
    event_log_entries,
    event_view,
    operation_view,
    revision_view,
)
from baepo.runtime import LABEL_INSTANCE, LABEL_REVISION, LABEL_SERVICE, Engine, EngineError
from baepo.store import Database, serialize

log = logging.getLogger(__name__)


class Reconciling(Protocol):
    """What the facade needs from the reconciler (`Reconciler` is one)."""

    def wake(self) -> None: ...

    def health(self, container_id: str) -> Health | None: ...

    def routed_health(self) -> dict[str, Health]: ...


class _Detached:
    def wake(self) -> None:
        pass

    def health(self, container_id: str) -> Health | None:
        return None

    def routed_health(self) -> dict[str, Health]:
        return {}


class Services:
    """`reconciler` is woken after each change and asked for instances' health; `logs`
    holds what gone instances wrote (without it, logs are the running instances' only)."""

    def __init__(
        self,
        *,
        db: Database,
        engine: Engine,
        secrets: SecretBox,
        clock: Clock,
        domain: str,
        registry: RegistryLink | None = None,
        reconciler: Reconciling | None = None,
        https_port: int = 443,
        reserved_names: tuple[str, ...] = (),
        quota: Quota | None = None,
        logs: LogKeeper | None = None,
    ) -> None:
        self._db = db
        self._engine = engine
        self._sealer = records.Sealer(secrets)
        self._installation = secrets.fingerprint
        self._clock = clock
        self._domain = domain
        self._registry = registry or RegistryLink()
        self._reconciler: Reconciling = reconciler or _Detached()
        self._reserved = reserved_names  # names whose host Baepo itself answers (its registry)
        self._quota = quota or Quota()
        self._logs = ServiceLogs(engine, logs, self._installation, clock)
        self.configurations = AutoScalingConfigurations(db, clock)
        """The shared autoscaling configurations services may name."""
        # Service URLs name the router's HTTPS port unless it is the default one.
        self._url_suffix = self._domain + ("" if https_port == 443 else f":{https_port}")

    # -- changes -------------------------------------------------------------------------

    @property
    def registry(self) -> RegistryLink:
        """How images in Baepo's own registry are named (for the API's checks of images)."""
        return self._registry

    def create(
        self, change: SpecChange, *, caller: Caller = SYSTEM, owner: str | None = None
    ) -> tuple[ServiceView, OperationView]:
        """Create a service from the fields `change` names, owned by `owner` (default: the
        caller)."""
        owner = caller.name if owner is None else owner
        if not OWNER_PATTERN.fullmatch(owner) or len(owner) > 64:
            raise InvalidServiceSpec(
                [("owner", f"{owner!r} is not a user or team name (a-z, 0-9, '-')")]
            )
        if not caller.may_own(owner):
            raise InvalidServiceSpec([("owner", f"{caller.name} may not create for {owner}")])
        spec = change.new_spec(self._registry)
        if spec.name in self._reserved:
            raise InvalidServiceSpec(
                [("name", f"{spec.name}.{self._domain} is where Baepo's registry answers")]
            )
        now = self._clock.now()
        try:
            with self._session() as s, s.begin():
                records.lock_service(s, spec.name)  # serializes creates (on SQLite, all changes)
                if s.scalar(_live(spec.name)) is not None:
                    raise ServiceExists(f"a service named {spec.name!r} exists")
                spec = attach(s, spec, caller)
                self._check_quota(s, owner, caller, spec)
                self._check_domains(s, spec, caller)
                service = ServiceRow(
                    id=records.new_id(),
                    name=spec.name,
                    owner=owner,
                    spec=self._sealer.document(spec),
                    status=ServiceStatus.OPERATION_IN_PROGRESS.value,
                    created_at=now,
                    updated_at=now,
                )
                s.add(service)
                s.flush()
                op = records.add_operation(s, service, OperationKind.CREATE_SERVICE, now)
                result = self._view(s, service, instances=()), operation_view(op, spec.name)
        except Conflict as exc:  # created by someone else between our check and our insert
            raise ServiceExists(f"a service named {spec.name!r} exists") from exc
        self._reconciler.wake()
        return result

    def update(self, name: str, wanted: SpecChange, *, caller: Caller = SYSTEM) -> OperationView:
        """Change the configuration; a new revision when instances must change."""

        def change(s: Session, service: ServiceRow) -> OperationRow:
            self._require_running(service, "update")
            current = self._sealer.spec(service.spec)
            spec = attach(s, wanted.applied_to(current, self._registry), caller, current)
            self._check_quota(s, service.owner, caller, spec)
            self._check_domains(s, spec, caller)
            payload = {"spec": self._sealer.document(spec)}
            return self._add(s, service, OperationKind.UPDATE_SERVICE, payload)

        return self._change(name, change, caller)

    def deploy(
        self, name: str, image: str | None = None, *, caller: Caller = SYSTEM
    ) -> OperationView:
        """Deploy the image again (its tag may point elsewhere now), or `image` instead."""
        if image is not None:
            validate_image(image)  # the same words as create and update

        def change(s: Session, service: ServiceRow) -> OperationRow:
            self._require_running(service, "deploy")
            payload = {"image": image} if image else {}
            return self._add(s, service, OperationKind.START_DEPLOYMENT, payload, queue=True)

        return self._change(name, change, caller)

    def rollback(self, name: str, to_revision: int, *, caller: Caller = SYSTEM) -> OperationView:
        """Serve revision `to_revision` again (its image digest and its configuration)."""

        def change(s: Session, service: ServiceRow) -> OperationRow:
            self._require_running(service, "roll back")
            target = records.revision(s, service.id, to_revision)  # RevisionNotFound
            self._check_domains(s, self._sealer.spec(target.spec), caller)
            payload = {"revision": to_revision}
            return self._add(s, service, OperationKind.ROLLBACK_SERVICE, payload)

        return self._change(name, change, caller)

    def pause(self, name: str, *, caller: Caller = SYSTEM) -> OperationView:
        def change(s: Session, service: ServiceRow) -> OperationRow:
            self._require_running(service, "pause")
            if service.active_revision is None:
                raise InvalidServiceState(f"{name} has never run; there is nothing to pause")
            return self._add(s, service, OperationKind.PAUSE_SERVICE, {})

        return self._change(name, change, caller)

    def resume(self, name: str, *, caller: Caller = SYSTEM) -> OperationView:
        def change(s: Session, service: ServiceRow) -> OperationRow:
            if not service.paused or service.deleting:
                raise InvalidServiceState(f"{name} is not paused ({service.status})")
            return self._add(s, service, OperationKind.RESUME_SERVICE, {})

        return self._change(name, change, caller)

    def delete(self, name: str, *, caller: Caller = SYSTEM) -> OperationView:
        """Delete the service; whatever operation waits or runs is cancelled."""

        def change(s: Session, service: ServiceRow) -> OperationRow:
            now = self._clock.now()
            for op in records.operations_in_flight(s, service.id):
                op.status = OperationStatus.FAILED.value
                op.ended_at = now
                op.message = "cancelled: the service is being deleted"
                records.log(s, op, now, f"FAILED: {op.message}")
            return self._add(s, service, OperationKind.DELETE_SERVICE, {}, idle=False)

        return self._change(name, change, caller)

    # -- reads ---------------------------------------------------------------------------

    def list(self, *, caller: Caller = SYSTEM) -> builtins.list[ServiceView]:
        """The live services the caller reaches, by name."""
        running = self._instances({})
        with self._session() as s:
            return [
                self._view(s, row, running.get(row.name, ()))
                for row in records.live_services(s)
                if caller.reaches(row.name, row.owner)
            ]

    def names(self, *, caller: Caller = SYSTEM) -> builtins.list[str]:
        """The live services the caller reaches, by name: from the database alone (a metrics
        scrape asks every few seconds; the engine is not asked)."""
        with self._session() as s:
            return [
                row.name for row in records.live_services(s) if caller.reaches(row.name, row.owner)
            ]

    def describe(self, name: str, *, caller: Caller = SYSTEM) -> ServiceView:
        running = self._instances({LABEL_SERVICE: name})
        with self._session() as s:
            service = _reached(records.live_service(s, name), caller)
            return self._view(s, service, running.get(name, ()))

    def identity(self, name: str, *, caller: Caller = SYSTEM) -> ServiceIdentity:
        """Its owner and creation time, from the database alone: for the checks made at
        every git request and pipeline settings read (`describe` also asks the engine for
        the service's instances)."""
        with self._session() as s:
            service = _reached(records.live_service(s, name), caller)
            return ServiceIdentity(service.name, service.owner, service.created_at)

    def secrets(self, name: str, *, caller: Caller = SYSTEM) -> dict[str, str]:
        """The service's secrets in the clear: for what Baepo runs on its behalf (a
        pipeline's steps, which mask them in their logs), never for a person."""
        with self._session() as s:
            service = _reached(records.live_service(s, name), caller)
            return dict(self._sealer.spec(service.spec).secrets)

    def operations(self, name: str, *, caller: Caller = SYSTEM) -> builtins.list[OperationView]:
        """Newest first, without their logs (`operation(id)` has the log)."""
        with self._session() as s:
            service = _reached(records.live_service(s, name), caller)
            return [operation_view(op, name) for op in records.operations(s, service.id)]

    def operation(self, operation_id: str, *, caller: Caller = SYSTEM) -> OperationView:
        """One operation with its log; also of a deleted service (to its owner or an admin)."""
        with self._session() as s:
            op = records.operation_by_id(s, operation_id)
            service = s.get(ServiceRow, op.service_id)
            assert service is not None
            if not caller.reaches(service.name, service.owner):
                raise OperationNotFound(f"no operation {operation_id!r}")
            return operation_view(op, service.name, records.operation_log(s, op))

    def revisions(self, name: str, *, caller: Caller = SYSTEM) -> builtins.list[RevisionView]:
        """Newest first, configurations masked."""
        with self._session() as s:
            service = _reached(records.live_service(s, name), caller)
            return [
                revision_view(row, service, self._sealer.spec(row.spec).masked())
                for row in records.revisions(s, service.id)
            ]

    def images_in_use(self) -> builtins.list[tuple[str, str | None]]:
        """Every image a live service runs or may run again, as (reference, pinned digest or
        None): each revision's (kept for a rollback too) and the one it is configured with.
        What a registry's clean-up must keep."""
        with self._session() as s:
            return records.images_in_use(s)

    def events(self, name: str, *, caller: Caller = SYSTEM) -> builtins.list[EventView]:
        """Newest first."""
        with self._session() as s:
            service = _reached(records.live_service(s, name), caller)
            return [event_view(row) for row in records.events(s, service.id)]

    def logs(
        self, name: str, query: LogQuery, *, caller: Caller = SYSTEM
    ) -> builtins.list[LogEntry]:
        """The service's log lines `query` asks for, oldest first (`service_logs.py`)."""
        query, events = self._log_target(name, query, caller)
        return self._logs.read(name, query, events)

    def follow_logs(self, name: str, query: LogQuery, *, caller: Caller = SYSTEM) -> LogFollower:
        """`logs`, then what comes as it comes: the caller closes the follower."""
        query, events = self._log_target(name, query, caller)
        return self._logs.follow(name, query, events)

    # -- internals -----------------------------------------------------------------------

    def _log_target(self, name: str, query: LogQuery, caller: Caller) -> tuple[LogQuery, EventLog]:
        with self._session() as s:
            service = _reached(records.live_service(s, name), caller)
            service_id, created_at = service.id, service.created_at

        def events(since: datetime | None, limit: int) -> builtins.list[LogEntry]:
            with self._session() as s:
                lines, rows = records.event_log(s, service_id, since, limit)
                return event_log_entries(name, lines, rows)

        return query.resolved(self._clock.now(), created_at), events

    def _check_quota(self, s: Session, owner: str, caller: Caller, spec: ServiceSpec) -> None:
        """`spec` (new, or replacing the service of its name) fits the owner's quota; an
        admin is not bound."""
        if caller.owners is None:
            return
        serialize(s, "control.quota")  # two creates at once count each other
        others = [
            row for row in records.live_services(s) if row.owner == owner and row.name != spec.name
        ]
        # The stored document holds min_instances in the clear (only secrets are sealed).
        minimums = [int(row.spec.get("min_instances", 1)) for row in others]
        self._quota.check(owner, len(others) + 1, [*minimums, spec.min_instances])

    def _session(self) -> AbstractContextManager[Session]:
        return records.session(self._db)

    def _change(
        self,
        name: str,
        change: Callable[[Session, ServiceRow], OperationRow],
        caller: Caller,
    ) -> OperationView:
        with self._session() as s, s.begin():
            # First a write: the checks `change` makes see every change committed before,
            # and no other change of the service commits until this one has.
            records.lock_service(s, name)
            service = _reached(records.live_service(s, name), caller)
            op = change(s, service)
            view = operation_view(op, name)
        self._reconciler.wake()
        return view

    def _add(
        self,
        s: Session,
        service: ServiceRow,
        kind: OperationKind,
        payload: dict[str, Any],
        idle: bool = True,
        queue: bool = False,
    ) -> OperationRow:
        """Record a PENDING operation; unless `idle` is False, only if none is in flight —
        or, with `queue`, behind the ones in flight."""
        busy = records.operations_in_flight(s, service.id) if idle else []
        if busy and not queue:
            raise OperationInProgress(
                f"{service.name} has an operation in flight ({busy[0].kind} {busy[0].id}, "
                f"{busy[0].status}); wait for it to end",
                busy[0].id,
            )
        line = ""
        if busy:
            last = busy[-1]
            line = f"{kind.value} requested; waiting for operation {last.id} ({last.kind}) to end"
        return records.add_operation(s, service, kind, self._clock.now(), payload, line=line)

    def _require_running(self, service: ServiceRow, verb: str) -> None:
        if service.deleting:
            raise InvalidServiceState(f"cannot {verb} {service.name}: it is being deleted")
        if service.paused:
            raise InvalidServiceState(f"cannot {verb} {service.name}: it is paused; resume it")

    def _check_domains(self, s: Session, spec: ServiceSpec, caller: Caller) -> None:
        if spec.custom_domains:
            serialize(s, "control.domains")  # two services asking for one domain at once
        problems: builtins.list[tuple[str, str]] = []
        for host in spec.custom_domains:
            if host == self._domain or host.endswith(f".{self._domain}"):
                problems.append(
                    ("custom_domains", f"{host} is under {self._domain}, where service names live")
                )
            elif (holder := records.domain_owner(s, host, spec.name)) is not None:
                # `holder` has it, or asked for it in an operation still in flight; named
                # only to a caller who may see it.
                row = s.scalar(sa.select(ServiceRow).where(_live_row(holder)))
                if row is None or not caller.reaches(row.name, row.owner):
                    holder = "another service"
                problems.append(("custom_domains", f"{host} is already used by {holder}"))
        if problems:
            raise InvalidServiceSpec(problems)

    def _instances(self, labels: Mapping[str, str]) -> dict[str, tuple[InstanceView, ...]]:
        try:
            containers = self._engine.list({**labels, LABEL_INSTALLATION: self._installation})
        except EngineError as exc:
            log.warning("cannot list instances: %s", exc)
            return {}
        found: dict[str, builtins.list[InstanceView]] = {}
        routed: dict[str, Health] | None = None
        for c in containers:
            service, instance = c.labels.get(LABEL_SERVICE), c.labels.get(LABEL_INSTANCE)
            if service is None or instance is None:
                continue
            revision = c.labels.get(LABEL_REVISION, "")
            health = self._reconciler.health(c.id)
            if health is None:  # not tracked here: this process does not lead
                routed = self._reconciler.routed_health() if routed is None else routed
                health = routed.get(instance)
            found.setdefault(service, []).append(
                InstanceView(
                    id=instance,
                    container=c.id,
                    revision=int(revision) if revision.isdigit() else None,
                    state=c.state,
                    health=health.value if health is not None else "unknown",
                    address=c.address,
                    started_at=c.started_at,
                    exit_code=c.exit_code,
                )
            )
        return {k: tuple(sorted(v, key=lambda i: i.id)) for k, v in found.items()}

    def _view(
        self, s: Session, service: ServiceRow, instances: tuple[InstanceView, ...]
    ) -> ServiceView:
        in_flight = records.operation_in_flight(s, service.id)
        return ServiceView(
            name=service.name,
            owner=service.owner,
            status=service.status,
            url=f"https://{service.name}.{self._url_suffix}",
            revision=service.revision,
            active_revision=service.active_revision,
            config=self._sealer.spec(service.spec).masked(),
            instances=instances,
            operation=in_flight.id if in_flight else None,
            created_at=service.created_at,
            updated_at=service.updated_at,
        )


def _reached(service: ServiceRow, caller: Caller) -> ServiceRow:
    """The service, if the caller reaches it; else it does not exist, as far as they know."""
    if not caller.reaches(service.name, service.owner):
        raise ServiceNotFound(f"no service named {service.name!r}")
    return service


def _live(name: str) -> sa.Select[Any]:
    return sa.select(ServiceRow.id).where(_live_row(name))


def _live_row(name: str) -> sa.ColumnElement[bool]:
    return (ServiceRow.name == name) & ServiceRow.deleted_at.is_(None)
