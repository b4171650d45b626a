"""Shared autoscaling configurations (App Runner's AutoScalingConfiguration): create, read,
delete, and `attach`, which gives a service the values of the one it names.

A configuration is a name and immutable revisions of (min_size, max_size, max_concurrency),
with App Runner's names, defaults (1 / 25 / 100) and bounds, except that min_size may be 0
(Baepo scales to zero). Creating one with a name that exists adds a revision; the newest live
one is the latest. A name belongs to one owner (a user or team, as services do); a caller
reaches the configurations of the owners it reaches (an admin: all), plus the built-in
`DefaultConfiguration`, which nobody may change or delete.

A service that names a configuration gets it *pinned* and *copied* when it is created or
updated (`attach`): its spec says `fast:2` and holds fast:2's three values as its
`min_instances`, `max_instances` and `max_concurrency`. So the reconciler, the quota and the
router read the service's own spec as before, a rollback brings back the configuration the
revision ran with, and nothing changes underfoot: a revision is never edited, and one that a
live service uses (or an operation in flight may leave it with) cannot be deleted
(`ConfigurationInUse`, 409). A deleted revision keeps its row, so its number is never reused.

Each unit of work that decides from what it reads starts with a write to the rows of the
name (`_lock`): on SQLite that takes the database's write lock first (see `records.py`), on
PostgreSQL the rows' locks, so a delete and an `attach` of one revision are decided in turn.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from baepo.clock import Clock
from baepo.control import records
from baepo.control.autoscaling import AutoScalingConfiguration, InvalidAutoScalingConfiguration
from baepo.control.callers import OWNER_PATTERN, SYSTEM, Caller
from baepo.control.configuration_refs import DEFAULT_NAME, ConfigurationRef, check_name
from baepo.control.errors import (
    ConfigurationInUse,
    ConfigurationNotFound,
    Conflict,
    InvalidServiceSpec,
    QuotaExceeded,
)
from baepo.control.spec import ServiceSpec
from baepo.control.tables import AutoScalingConfigurationRow
from baepo.store import Database, serialize

MAX_NAMES_PER_OWNER = 10
"""App Runner's quota: configurations (names) per account."""
MAX_REVISIONS_PER_NAME = 5
"""App Runner's quota: live revisions of one name."""
DEFAULT = AutoScalingConfiguration(min_size=1, max_size=25, max_concurrency=100)


@dataclass(frozen=True)
class ConfigurationView:
    name: str
    revision: int
    latest: bool
    """The newest live revision of its name (what `NAME` without a revision means)."""
    owner: str
    min_size: int
    max_size: int
    max_concurrency: int
    services: tuple[str, ...]
    """The live services that use this revision, among those the caller reaches."""
    in_use: int
    """All the live services that use it (some may be hidden from the caller)."""
    created_at: datetime | None
    """None for the built-in `DefaultConfiguration`."""


class AutoScalingConfigurations:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    def create(
        self,
        name: str,
        min_size: int = DEFAULT.min_size,
        max_size: int = DEFAULT.max_size,
        max_concurrency: int = DEFAULT.max_concurrency,
        *,
        caller: Caller = SYSTEM,
        owner: str | None = None,
    ) -> ConfigurationView:
        """A new revision of `name` (its first, if the name is new), owned by `owner`
        (default: the caller)."""
        check_name(name)
        if name == DEFAULT_NAME:
            raise InvalidAutoScalingConfiguration(
                [("name", f"{DEFAULT_NAME} is built in and cannot be changed; choose another")]
            )
        # Checks types and bounds; min_size may be 0 (scale to zero).
        values = AutoScalingConfiguration(
            min_size=min_size, max_size=max_size, max_concurrency=max_concurrency
        )
        owner = caller.name if owner is None else owner
        if not OWNER_PATTERN.fullmatch(owner) or len(owner) > 64:
            raise InvalidServiceSpec([("owner", f"{owner!r} is not a user or team name")])
        if not caller.may_own(owner):
            raise InvalidServiceSpec([("owner", f"{caller.name} may not create for {owner}")])
        with self._session() as s, s.begin():
            _lock(s, name)
            rows = _revisions(s, name, deleted=True)
            live = [r for r in rows if r.deleted_at is None]
            if live and live[0].owner != owner:
                held = live[0].owner if _reaches(caller, live[0].owner) else "another owner"
                raise Conflict(f"the autoscaling configuration name {name!r} belongs to {held}")
            if caller.owners is not None:
                _check_quota(s, owner, name, live)
            row = AutoScalingConfigurationRow(
                name=name,
                revision=max((r.revision for r in rows), default=0) + 1,
                owner=owner,
                min_size=values.min_size,
                max_size=values.max_size,
                max_concurrency=values.max_concurrency,
                created_at=self._clock.now(),
            )
            s.add(row)
            s.flush()
            return _view(row, True, _users(s), caller)

    def list(
        self, *, caller: Caller = SYSTEM, name: str | None = None, latest_only: bool = False
    ) -> builtins.list[ConfigurationView]:
        """Every live revision the caller reaches (of `name` only, if given), by name, newest
        revision first; `DefaultConfiguration` among them."""
        with self._session() as s:
            users = _users(s)
            views = [] if name not in (None, DEFAULT_NAME) else [_default_view(users, caller)]
            query = sa.select(AutoScalingConfigurationRow).where(
                AutoScalingConfigurationRow.deleted_at.is_(None)
            )
            if name is not None:
                query = query.where(AutoScalingConfigurationRow.name == name)
            if caller.owners is not None:
                query = query.where(AutoScalingConfigurationRow.owner.in_(caller.owners))
            query = query.order_by(
                AutoScalingConfigurationRow.name, AutoScalingConfigurationRow.revision.desc()
            )
            previous = None
            for row in s.scalars(query):
                latest = row.name != previous
                previous = row.name
                if latest or not latest_only:
                    views.append(_view(row, latest, users, caller))
            return sorted(views, key=lambda v: (v.name.lower(), v.name, -v.revision))

    def describe(
        self, name: str, revision: int | None = None, *, caller: Caller = SYSTEM
    ) -> ConfigurationView:
        """One revision, the latest if `revision` is None."""
        with self._session() as s:
            return self._find(s, ConfigurationRef(name, revision), caller)

    def delete(
        self, name: str, revision: int | None = None, *, caller: Caller = SYSTEM
    ) -> builtins.list[ConfigurationView]:
        """Delete one revision, or (`revision` None) every one of `name`; refused while a
        live service uses one of them."""
        if name == DEFAULT_NAME:
            raise Conflict(f"{DEFAULT_NAME} is built in and cannot be deleted")
        with self._session() as s, s.begin():
            _lock(s, name)
            targets = [
                r
                for r in _revisions(s, name)
                if _reaches(caller, r.owner) and revision in (None, r.revision)
            ]
            if not targets:
                raise ConfigurationNotFound(_missing(ConfigurationRef(name, revision)))
            users = _users(s)
            for row in targets:
                using = users.get(f"{row.name}:{row.revision}", ())
                if using:
                    seen = [n for n, owner in using if caller.reaches(n, owner)]
                    hidden = len(using) - len(seen)
                    named = ", ".join(seen + ([f"{hidden} service(s) of others"] if hidden else []))
                    raise ConfigurationInUse(
                        f"{row.name}:{row.revision} is used by {named}: give them another"
                        " autoscaling configuration first (baepo services update NAME"
                        " --autoscaling OTHER)"
                    )
            now = self._clock.now()
            views = []
            for row in targets:
                row.deleted_at = now
                views.append(_view(row, False, {}))
            return views

    def _find(self, s: Session, ref: ConfigurationRef, caller: Caller) -> ConfigurationView:
        users = _users(s)
        if ref.name == DEFAULT_NAME and ref.revision in (None, 1):
            return _default_view(users, caller)
        rows = [r for r in _revisions(s, ref.name) if _reaches(caller, r.owner)]
        for row in rows:
            if ref.revision in (None, row.revision):
                return _view(row, row is rows[0], users, caller)
        raise ConfigurationNotFound(_missing(ref))

    def _session(self) -> AbstractContextManager[Session]:
        return records.session(self._db)


def attach(
    s: Session, spec: ServiceSpec, caller: Caller, current: ServiceSpec | None = None
) -> ServiceSpec:
    """`spec` with its autoscaling configuration pinned (`fast` → `fast:2`, the latest) and
    its values copied into the spec's bounds. A reference that `current` (the service's spec
    now) already has stays as it is, even if that revision is gone (a rollback brought it
    back): its values are already the spec's. Call inside the transaction that stores `spec`."""
    if spec.autoscaling_configuration is None:
        return spec
    if current is not None and spec.autoscaling_configuration == current.autoscaling_configuration:
        return replace(
            spec,
            min_instances=current.min_instances,
            max_instances=current.max_instances,
            max_concurrency=current.max_concurrency,
        )
    ref = ConfigurationRef.parse(spec.autoscaling_configuration)
    if ref.name == DEFAULT_NAME and ref.revision in (None, 1):
        pinned, values = ConfigurationRef(DEFAULT_NAME, 1), DEFAULT
    else:
        _lock(s, ref.name)
        rows = [r for r in _revisions(s, ref.name) if _reaches(caller, r.owner)]
        found = next((r for r in rows if ref.revision in (None, r.revision)), None)
        if found is None:
            raise InvalidServiceSpec([("autoscaling_configuration", _missing(ref))])
        pinned = ConfigurationRef(found.name, found.revision)
        values = AutoScalingConfiguration(found.min_size, found.max_size, found.max_concurrency)
    return replace(
        spec,
        autoscaling_configuration=str(pinned),
        min_instances=values.min_size,
        max_instances=values.max_size,
        max_concurrency=values.max_concurrency,
    )


def _lock(s: Session, name: str) -> None:
    s.execute(
        sa.update(AutoScalingConfigurationRow)
        .where(AutoScalingConfigurationRow.name == name)
        .values(revision=AutoScalingConfigurationRow.revision),
        execution_options={"synchronize_session": False},
    )


def _revisions(
    s: Session, name: str, *, deleted: bool = False
) -> Sequence[AutoScalingConfigurationRow]:
    """The revisions of `name`, newest first; the deleted ones too with `deleted`."""
    query = sa.select(AutoScalingConfigurationRow).where(AutoScalingConfigurationRow.name == name)
    if not deleted:
        query = query.where(AutoScalingConfigurationRow.deleted_at.is_(None))
    return s.scalars(query.order_by(AutoScalingConfigurationRow.revision.desc())).all()


def _check_quota(
    s: Session, owner: str, name: str, live: Sequence[AutoScalingConfigurationRow]
) -> None:
    if len(live) >= MAX_REVISIONS_PER_NAME:
        raise QuotaExceeded(
            f"{name} has {len(live)} revisions, as many as it may have: delete an unused one"
            f" (baepo autoscaling delete {name}:{live[-1].revision})"
        )
    if not live:
        serialize(s, "control.autoscaling-names")  # two new names at once count each other
        names = s.scalar(
            sa.select(sa.func.count(sa.distinct(AutoScalingConfigurationRow.name))).where(
                AutoScalingConfigurationRow.owner == owner,
                AutoScalingConfigurationRow.deleted_at.is_(None),
            )
        )
        if (names or 0) >= MAX_NAMES_PER_OWNER:
            raise QuotaExceeded(
                f"{owner} may have at most {MAX_NAMES_PER_OWNER} autoscaling configurations"
            )


def _users(s: Session) -> dict[str, builtins.list[tuple[str, str]]]:
    """`name:revision` → the (service, owner) of the live services that use it (now, or
    after an operation in flight)."""
    found: dict[str, builtins.list[tuple[str, str]]] = {}
    for service, documents in records.every_claimed_document(s):
        refs = {d.get("autoscaling_configuration") for d in documents}
        for ref in refs - {None}:
            found.setdefault(str(ref), []).append((service.name, service.owner))
    return found


def _view(
    row: AutoScalingConfigurationRow,
    latest: bool,
    users: dict[str, builtins.list[tuple[str, str]]],
    caller: Caller = SYSTEM,
) -> ConfigurationView:
    using = users.get(f"{row.name}:{row.revision}", [])
    seen = tuple(name for name, owner in using if caller.reaches(name, owner))
    return ConfigurationView(
        name=row.name,
        revision=row.revision,
        latest=latest,
        owner=row.owner,
        min_size=row.min_size,
        max_size=row.max_size,
        max_concurrency=row.max_concurrency,
        services=seen,
        in_use=len(using),
        created_at=row.created_at,
    )


def _default_view(
    users: dict[str, builtins.list[tuple[str, str]]], caller: Caller
) -> ConfigurationView:
    using = users.get(f"{DEFAULT_NAME}:1", [])
    return ConfigurationView(
        name=DEFAULT_NAME,
        revision=1,
        latest=True,
        owner="",
        min_size=DEFAULT.min_size,
        max_size=DEFAULT.max_size,
        max_concurrency=DEFAULT.max_concurrency,
        services=tuple(name for name, owner in using if caller.reaches(name, owner)),
        in_use=len(using),
        created_at=None,
    )


def _reaches(caller: Caller, owner: str) -> bool:
    return caller.owners is None or owner in caller.owners


def _missing(ref: ConfigurationRef) -> str:
    return f"no autoscaling configuration {ref}"
