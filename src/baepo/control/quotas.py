"""How much one user may run: a bound per owner, so that one account (or a script gone wrong)
cannot fill the machine or the router with services. Admins are not bound.

Instances count as the minimum each service keeps running (`min_instances`): what is always
there, whatever the load. A service that scales to zero (`min_instances` 0) counts 0: idle, it
keeps nothing running.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

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
