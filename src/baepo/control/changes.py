"""Which services a reconcile pass converges: those whose inputs changed since a quiet pass.

A service's pass reads its rows (the service, its operations), its containers, its route and
the router's health verdicts on its servers. When a pass over it ends with nothing to do and
nothing in motion, the tracker keeps those inputs as one comparable value, its signature; a
later pass whose inputs give the same signature would find nothing to do either, and is
skipped. A pass that ends busy (an operation in flight, an instance starting or draining,
actions applied) or fails keeps no signature: the service is converged again next pass.

The rows are read for every service in one query as a change mark
(`records.live_service_marks`): cheap whatever the number of services, which is the point
(issue 9: 100 idle services under 2 % of a core). What no mark shows (a row edited by hand)
is the reconciler's full pass's to find.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from baepo.router import RouteState
from baepo.runtime import Instance

Signature = tuple[object, ...]


@dataclass(frozen=True)
class ServiceKey:
    """A live service as one query lists them all, with the mark of its rows' state."""

    id: str
    name: str
    mark: tuple[object, ...]
    operations: int = 1
    """How many of its operations are in flight (pending or in progress)."""


def signature(
    key: ServiceKey, containers: Sequence[Instance], route_state: RouteState | None
) -> Signature:
    """What a service's pass reads, as one value (in-flight counts left out: a draining
    service is busy, and is converged every pass anyway)."""
    listed = tuple(
        sorted((c.id, c.state, c.exit_code, c.address, c.started_at) for c in containers)
    )
    if route_state is None:
        return (key.mark, listed, None, ())
    # Why a server is down matters (it is in the event); why one is up does not ("Initializing"
    # then "Layer4 check passed" is no change worth a pass).
    verdicts = tuple(
        sorted((name, v.up, "" if v.up else v.detail) for name, v in route_state.health.items())
    )
    return (key.mark, listed, route_state.route, verdicts)


class ChangeTracker:
    """The signature of each service's last quiet pass. Used from the event loop only."""

    def __init__(self) -> None:
        self._settled: dict[str, Signature] = {}

    def changed(self, key: ServiceKey, now: Signature) -> bool:
        return self._settled.get(key.id) != now

    def unsettle(self, service_id: str) -> None:
        """A pass over the service began: until it ends quiet, it is converged each pass."""
        self._settled.pop(service_id, None)

    def settle(self, service_id: str, inputs: Signature) -> None:
        """The pass over the service that read `inputs` found nothing to do."""
        self._settled[service_id] = inputs

    def forget_all_but(self, service_ids: Iterable[str]) -> None:
        keep = set(service_ids)
        for gone in set(self._settled) - keep:
            del self._settled[gone]
