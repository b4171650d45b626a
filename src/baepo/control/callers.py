"""Who asks the facade for something, as the control room needs to know it: plain data.

The API decides what a caller may reach (the auth room's rights) and hands `Services` a
`Caller`; the control room only applies it: a service the caller cannot reach answers as if it
did not exist (`ServiceNotFound`, `OperationNotFound`), so its name is not disclosed. `SYSTEM`
(Baepo itself: the sample service, tests) reaches everything and owns what it creates as
`admin`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ADMIN_OWNER = "admin"
"""The owner of services Baepo made itself, and of those made before services had owners."""
OWNER_PATTERN = re.compile(r"^[a-z0-9]+(?:-+[a-z0-9]+)*$")
"""A user name or a team namespace (one repository path component, as `alice` or `team`)."""


@dataclass(frozen=True)
class Caller:
    name: str
    """Who asks; the owner of what they create unless they name another."""
    owners: frozenset[str] | None = None
    """The owners whose services the caller reaches; None for every owner (an admin)."""
    services: frozenset[str] | None = None
    """Only these services (an API token's limit); None for no limit."""

    def reaches(self, name: str, owner: str) -> bool:
        return (self.owners is None or owner in self.owners) and (
            self.services is None or name in self.services
        )

    def may_own(self, owner: str) -> bool:
        return self.services is None and (self.owners is None or owner in self.owners)


SYSTEM = Caller(ADMIN_OWNER)
