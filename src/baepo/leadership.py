"""Leadership: which of several Baepo processes sharing one database runs the control loops.

Every process serves the API and the registry; the one holding the `control` lease
(`baepo.store.leases`) also runs the loops that act on the world: the reconciler (and the
autoscaler it drives), the expiry of uploads, the registry's lifecycle policies. A process
claims the lease every `RENEW_S` and leads from the first claim that gives it the lease.

It leads only while it is sure no one else does: until a margin (`RENEW_S`) before the lease
it last got expires. A claim that fails (the database does not answer, or not within
`RENEW_S`) changes nothing by itself; the margin running out does. A leader that loses the
lease — the margin ran out, or another process holds it — stops leading for good: `lost` is
called once, and Baepo then exits with an error, so that its supervisor (systemd) starts it
afresh, as a follower. Starting afresh, rather than pausing the loops and resuming them later,
leaves no state of a term behind in the next one.

    follower ──claim gives the lease──▶ leader ──margin runs out, or another holds it──▶ lost
       ▲  │                                 │
       └──┘ claim refused or fails          └─▶ renewed every RENEW_S
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from baepo.clock import Clock
from baepo.store import StoreError
from baepo.store.leases import Lease

log = logging.getLogger(__name__)

RENEW_S = 2.0
"""How often the lease is claimed; also the margin a leader keeps before its lease expires."""


def sure_until(expiry: datetime | None, margin_s: float = RENEW_S) -> datetime | None:
    """Until when a claimant that got the lease until `expiry` may act on it (None: not)."""
    return None if expiry is None else expiry - timedelta(seconds=margin_s)


class Leadership:
    def __init__(
        self,
        lease: Lease,
        clock: Clock,
        lead: Callable[[], None],
        lost: Callable[[], None],
        renew_s: float = RENEW_S,
    ) -> None:
        self._lease = lease
        self._clock = clock
        self._lead = lead
        self._lost = lost
        self._renew_s = renew_s
        self._sure_until: datetime | None = None
        self.state = "follower"
        """follower, leader, or lost."""

    async def run(self) -> None:
        """Claim every `renew_s` until lost (or cancelled)."""
        while self.state != "lost":
            await self.tick()
            await self._clock.sleep(self._renew_s)

    async def tick(self) -> None:
        """One claim, and what it changes."""
        try:
            expiry = await asyncio.wait_for(
                asyncio.to_thread(self._lease.claim), timeout=self._renew_s
            )
        except (StoreError, TimeoutError) as exc:
            log.warning("cannot claim the %s lease: %s", self._lease.name, exc or "no answer")
        else:
            self._sure_until = sure_until(expiry, self._renew_s)
        sure = self._sure_until is not None and self._clock.now() < self._sure_until
        if sure and self.state == "follower":
            self.state = "leader"
            log.info("leading: this process runs the control loops (%s)", self._lease.holder)
            self._lead()
        elif not sure and self.state == "leader":
            self.state = "lost"
            log.error("lost the %s lease: stopping to start again as a follower", self._lease.name)
            self._lost()

    def release(self) -> None:
        """At a clean stop: a leader lets the lease go, so that another leads at once."""
        if self.state != "leader":
            return
        try:
            self._lease.release()
        except StoreError as exc:
            log.warning("could not release the %s lease: %s", self._lease.name, exc)
