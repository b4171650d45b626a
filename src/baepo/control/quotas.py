"""How much one user may run: a bound per owner, so that one account (or a script gone wrong)
cannot fill the machine or the router with services. Admins are not bound.

Instances count as the minimum each service keeps running (`min_instances`): what is always
there, whatever the load; a service that scales to zero (`min_instances` 0) counts 0: idle,
it keeps nothing running. The autoscaler may start more, but not past the same bound across
the owner's services: `within_quota` (pure) caps what it wants by what the owner has left,
and `InstanceLedger` keeps what each service was given, for the reconciler.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from baepo.control.callers import ADMIN_OWNER
from baepo.control.errors import QuotaExceeded


@dataclass(frozen=True)
class Quota:
    services: int = 50
    """Live services one owner may have."""
    instances: int = 100
    """Instances (the sum of `min_instances`) one owner's services may keep running."""

    def check(self, owner: str, services: int, instances: Iterable[int]) -> None:
        """Raise QuotaExceeded unless `services` services with these minimum instances fit."""
        if services > self.services:
            raise QuotaExceeded(
                f"{owner} may have at most {self.services} services"
                " (an admin may raise the quota: baepo up --max-services-per-user)"
            )
        total = sum(instances)
        if total > self.instances:
            raise QuotaExceeded(
                f"{owner}'s services may keep at most {self.instances} instances running,"
                f" not {total} (an admin may raise the quota: baepo up --max-instances-per-user)"
            )


def within_quota(wanted: int, minimum: int, others: int, limit: int) -> int:
    """The instances a service may run when the autoscaler wants `wanted`: no more than the
    owner's `limit` leaves after `others` (what the owner's other services run), and never
    fewer than the service's own `minimum` (the quota admitted it when it was set)."""
    return max(0, min(wanted, max(minimum, limit - others)))


@dataclass(frozen=True)
class Admitted:
    instances: int
    note: str | None
    """Set when the quota cut a scale-up and this cut was not told before (the event)."""


class InstanceLedger:
    """What each service was last given, by owner, for `within_quota`: the autoscaler may
    not start more than the owner's quota across that owner's services. Services owned by
    `admin` (Baepo's own) are not bound. A service not seen yet counts for nothing; one that
    is gone is forgotten (`forget_all_but`). Used from one thread (the reconciler's loop),
    so each decision reads the others' counts and records its own at once."""

    def __init__(self, quota: Quota, unbound: frozenset[str] = frozenset({ADMIN_OWNER})) -> None:
        self._limit = quota.instances
        self._unbound = unbound
        self._given: dict[str, tuple[str, int]] = {}  # service id → (owner, instances)
        self._told: dict[str, tuple[int, int]] = {}  # service id → (wanted, given) last told

    def hold(self, service_id: str, owner: str, instances: int) -> None:
        """Record what a service runs without the autoscaler (paused: 0; its minimum)."""
        self._given[service_id] = (owner, instances)
        self._told.pop(service_id, None)

    def admit(self, service_id: str, owner: str, minimum: int, wanted: int) -> Admitted:
        if owner in self._unbound:
            self.hold(service_id, owner, wanted)
            return Admitted(wanted, None)
        others = sum(n for sid, (o, n) in self._given.items() if o == owner and sid != service_id)
        given = within_quota(wanted, minimum, others, self._limit)
        self._given[service_id] = (owner, given)
        if given >= wanted:
            self._told.pop(service_id, None)
            return Admitted(given, None)
        if self._told.get(service_id) == (wanted, given):
            return Admitted(given, None)
        self._told[service_id] = (wanted, given)
        note = (
            f"scaling capped by the instance quota: {owner}'s services may run {self._limit}"
            f" instances and its others run {others} → {given} (wanted {wanted})"
        )
        return Admitted(given, note)

    def forget_all_but(self, service_ids: Iterable[str]) -> None:
        keep = set(service_ids)
        for gone in set(self._given) - keep:
            del self._given[gone]
            self._told.pop(gone, None)
