"""Who may do what: a pure function over plain data.

- An admin may do everything.
- Any signed-in user owns the namespace named after them (`alice/...`) and may pull, push and
  delete there; they may pull public repositories.
- Anonymous callers may pull public repositories, nothing else.
- An API token limited to some repositories grants its user's rights on those only.
- The catalog is open to every signed-in user (not to a token limited to repositories).
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from baepo.auth.access import REPOSITORY_ACTIONS, Access

ALL = frozenset({"*"})


@dataclass(frozen=True)
class Caller:
    name: str  # "" for anonymous
    is_admin: bool = False
    repositories: tuple[str, ...] = ()  # an API token's limit; empty for no limit


def allowed(caller: Caller, wanted: Access, public: bool) -> frozenset[str]:
    """The subset of `wanted.actions` the caller may perform."""
    if wanted.type == "registry":  # the catalog: every signed-in user, no limited token
        return wanted.actions if caller.name and not caller.repositories else frozenset()
    if wanted.type != "repository":
        return frozenset()
    actions = wanted.actions & REPOSITORY_ACTIONS
    if caller.repositories and not any(_match(p, wanted.name) for p in caller.repositories):
        return frozenset()
    if caller.is_admin:
        return actions
    if caller.name and wanted.name.startswith(caller.name + "/"):
        return actions
    return actions & {"pull"} if public else frozenset()


def _match(pattern: str, name: str) -> bool:
    return fnmatchcase(name, pattern) if "*" in pattern else name == pattern
