"""How many instances a reconcile pass gives a service: its autoscaler's answer, within quota.

Without an autoscaler (`Scaling`), a service runs its `min_instances`. With one, each pass over
a service asks it how many instances the service wants (given how many its route has ready),
and the owner's instance quota cuts that down if the owner's other services hold the rest
(`quotas.InstanceLedger`). A change of the count is recorded as the service's event, with the
autoscaler's reason or the quota's note. A paused service or one being deleted holds none of
the quota.

The autoscaler decides about once a second, but a service whose inputs did not change is
passed over (`changes.py`): `moved` asks every service's autoscaler at each pass, and a
service whose autoscaler wants another count than its last pass used is converged, with that
answer handed to its pass so that the reason is recorded once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from baepo.control.changes import ServiceKey
from baepo.control.instances import revision_of
from baepo.control.journal import Journal
from baepo.control.quotas import InstanceLedger, Quota
from baepo.control.scaling import Scaling, Wanted
from baepo.control.service_state import ServiceState
from baepo.router import RouteState, ServerState


class InstanceCounts:
    """The instance count of each service's pass. Used from the event loop only."""

    def __init__(self, scaling: Scaling | None, quota: Quota, journal: Journal) -> None:
        self._scaling = scaling
        self._ledger = InstanceLedger(quota)  # bounds what the autoscaler starts
        self._journal = journal
        self._last_state: dict[str, ServiceState] = {}  # service id → what its last pass wanted
        self._asked: dict[str, int] = {}  # service id → what its autoscaler last wanted

    def moved(self, key: ServiceKey, route_state: RouteState | None) -> Wanted | None:
        """The autoscaler's answer, if it wants another count than the service's last pass
        used (handed to that service's pass, so that its reason is recorded once)."""
        last = self._last_state.get(key.id)
        if self._scaling is None or last is None:
            return None
        desired = last.desired
        if desired.revision is None or desired.paused or desired.deleting:
            return None
        ready = serving(desired.service, route_state)
        wanted = self._scaling.want(desired.service, last.bounds, ready)
        if wanted.instances == self._asked.get(key.id) and wanted.reason is None:
            return None
        return wanted

    async def scaled(
        self, state: ServiceState, route: RouteState | None, decided: Wanted | None = None
    ) -> ServiceState:
        """`state` with the instances its autoscaler wants now (min_instances without one),
        within what the owner's instance quota leaves (`quotas.InstanceLedger`), and the
        scaling recorded as the service's event when the count changes or the quota cuts it.
        `decided`: the autoscaler's answer, if this pass asked already."""
        scaled = await self._scaled(state, route, decided)
        self._last_state[state.service_id] = scaled
        return scaled

    def waiting(self, service: str) -> bool:
        """Whether requests of the service wait for more instances (held at zero by the
        router's activator, or queued beyond what its instances carry)."""
        return self._scaling is not None and self._scaling.waiting(service)

    def forget_all_but(self, services: Iterable[ServiceKey]) -> None:
        """The live services: the autoscalers and quota holds of the others go."""
        live = list(services)
        if self._scaling is not None:
            self._scaling.forget_all_but({key.name for key in live})
        self._ledger.forget_all_but(key.id for key in live)

    async def _scaled(
        self, state: ServiceState, route: RouteState | None, decided: Wanted | None
    ) -> ServiceState:
        desired = state.desired
        if self._scaling is None or desired.revision is None or desired.paused or desired.deleting:
            stopped = desired.paused or desired.deleting
            self._ledger.hold(state.service_id, state.owner, 0 if stopped else desired.instances)
            return state
        ready = serving(desired.service, route)
        wanted = decided or self._scaling.want(desired.service, state.bounds, ready)
        self._asked[state.service_id] = wanted.instances
        admitted = self._ledger.admit(
            state.service_id, state.owner, state.bounds.min_instances, wanted.instances
        )
        scaled = state
        if admitted.instances != desired.instances:
            scaled = dataclasses.replace(
                state, desired=dataclasses.replace(desired, instances=admitted.instances)
            )
        if wanted.reason is not None:
            await self._journal.event(scaled, "scaled", "", f"scaling: {wanted.reason}")
        if admitted.note is not None:
            await self._journal.event(scaled, "scaled", "", admitted.note)
        return scaled


def serving(service: str, route: RouteState | None) -> int:
    """The service's size as its autoscaler sees it: the ready instances of the revision with
    the most, less those the router's health checks find down. A start-first deploy routes the
    new revision's instances beside the old ones until it drains them, and a replacement routes
    the new instance beside the one it replaces: counted together, that moment's double count
    would be kept for the scale-down delay and started again by the next deploy, doubling
    deploy after deploy (and a replacement would read as a scaling)."""
    per_revision: dict[int | None, int] = {}
    for server in route.route.servers if route else ():
        health = route.health.get(server.name) if route else None
        if server.state is ServerState.READY and (health is None or health.up):
            revision = revision_of(service, server.name)
            per_revision[revision] = per_revision.get(revision, 0) + 1
    return max(per_revision.values(), default=0)
