"""Scopes and principals, as plain data (the Docker token spec's resource scopes).

A scope string is `type:name:action[,action...]`, e.g. `repository:team/app:pull,push`.
Repository names may contain `:` only in the (rare) `host:port/` prefix form, so the name is
everything between the first and the last colon.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PULL = "pull"
PUSH = "push"
DELETE = "delete"
REPOSITORY_ACTIONS = frozenset({PULL, PUSH, DELETE})


@dataclass(frozen=True)
class Access:
    type: str  # "repository" or "registry"
    name: str  # repository name, or "catalog"
    actions: frozenset[str]

    def scope(self) -> str:
        return f"{self.type}:{self.name}:{','.join(sorted(self.actions))}"


def repository(name: str, *actions: str) -> Access:
    return Access("repository", name, frozenset(actions))


CATALOG = Access("registry", "catalog", frozenset({"*"}))


def parse_scope(text: str) -> Access | None:
    """Parse one scope; None for a malformed one (the token endpoint ignores those)."""
    first = text.find(":")
    last = text.rfind(":")
    if first <= 0 or last == first:
        return None
    kind, name, actions = text[:first], text[first + 1 : last], text[last + 1 :]
    if not name:
        return None
    return Access(kind, name, frozenset(a for a in actions.split(",") if a))


@dataclass(frozen=True)
class Principal:
    """Who is calling, and what they may do.

    `granted` is what a bearer token carries; for password or API-token callers it is
    computed from the user's rights when a check asks for it.
    """

    subject: str  # user name; "" for anonymous
    is_admin: bool = False
    granted: tuple[Access, ...] = field(default_factory=tuple)

    @property
    def anonymous(self) -> bool:
        return self.subject == ""

    def allows(self, wanted: Access) -> bool:
        return any(
            g.type == wanted.type
            and g.name == wanted.name
            and ("*" in g.actions or wanted.actions <= g.actions)
            for g in self.granted
        )
