"""Who may do what: pure functions over plain data.

Repositories (the registry):
- An admin may do everything.
- Any signed-in user owns the namespace named after them (`alice/...`) and may pull, push and
  delete there; they may pull public repositories.
- Anonymous callers may pull public repositories, nothing else.
- An API token limited to some repositories grants its user's rights on those only.
- An API token limited to services only (no repositories) grants nothing in the registry.
- The catalog is open to every signed-in user (not to a limited token).

Services (the control room's services, each with an owner: a user name or a team namespace):
- An admin sees and operates every service, and may create one for any owner.
- A user sees and operates the services they own (owner = their name), and creates services
  owned by themselves only. Others' services are hidden: they answer as if they did not exist.
- An API token limited to services sees only those (still only its user's own ones) and may
  read them and deploy them: nothing else on the API. A token limited to repositories only has
  nothing on the services API.
- A service runs only images its creator may pull: in Baepo's own registry, those the caller
  may pull (its namespace, public ones, any for an admin; a token's repository limit applies);
  from another registry, named in full, any image whose host is not on this machine or its
  private networks (no port probing through the engine). An unlimited admin may run any image,
  also one the engine only holds locally.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from fnmatch import fnmatchcase

from baepo.auth.access import PULL, REPOSITORY_ACTIONS, Access

ALL = frozenset({"*"})


@dataclass(frozen=True)
class Caller:
    name: str  # "" for anonymous
    is_admin: bool = False
    repositories: tuple[str, ...] = ()  # an API token's limit; empty for no limit
    services: tuple[str, ...] = ()  # an API token's limit to services; empty for no limit
    token: int | None = None  # the API token signed in with (its id); None for a password

    @property
    def limited(self) -> bool:
        return bool(self.repositories or self.services)


def allowed(caller: Caller, wanted: Access, public: bool) -> frozenset[str]:
    """The subset of `wanted.actions` the caller may perform."""
    if wanted.type == "registry":  # the catalog: every signed-in user, no limited token
        return wanted.actions if caller.name and not caller.limited else frozenset()
    if wanted.type != "repository":
        return frozenset()
    actions = wanted.actions & REPOSITORY_ACTIONS
    if caller.services and not caller.repositories:
        return frozenset()  # a token for services only: nothing in the registry
    if caller.repositories and not any(_match(p, wanted.name) for p in caller.repositories):
        return frozenset()
    if caller.is_admin:
        return actions
    if caller.name and wanted.name.startswith(caller.name + "/"):
        return actions
    return actions & {"pull"} if public else frozenset()


def _match(pattern: str, name: str) -> bool:
    return fnmatchcase(name, pattern) if "*" in pattern else name == pattern


# -- services ------------------------------------------------------------------------------


class ServiceAction(StrEnum):
    READ = "read"  # list, describe, operations, revisions, events
    DEPLOY = "deploy"  # start a deployment (of the tag again, or of another image)
    CREATE = "create"
    CHANGE = "change"  # update, rollback, pause, resume, delete


@dataclass(frozen=True)
class ServiceReach:
    """Which services a caller can see: plain data the control room filters by.

    `owners` None means every owner (an admin); `services` None means every service of those
    owners (no token limit)."""

    owners: frozenset[str] | None
    services: frozenset[str] | None


def service_reach(caller: Caller) -> ServiceReach:
    owners = None if caller.is_admin else frozenset({caller.name} if caller.name else ())
    return ServiceReach(owners, frozenset(caller.services) if caller.services else None)


def may_on_services(caller: Caller, action: ServiceAction) -> bool:
    """Whether the caller may do `action` to the services it can see (`service_reach`)."""
    if not caller.name:
        return False
    if caller.services:
        return action in (ServiceAction.READ, ServiceAction.DEPLOY)
    return not caller.repositories


def may_own(caller: Caller, owner: str) -> bool:
    """Whether the caller may create a service owned by `owner`."""
    if not may_on_services(caller, ServiceAction.CREATE):
        return False
    return caller.is_admin or owner == caller.name


def may_run_from_registry(caller: Caller, repository_name: str, public: bool) -> bool:
    """Whether a service the caller asks for may run an image of Baepo's registry: the caller
    (its user, within its token's repository limit) may pull it."""
    pulling = Caller(caller.name, caller.is_admin, caller.repositories)
    wanted = Access("repository", repository_name, frozenset({PULL}))
    return PULL in allowed(pulling, wanted, public)


def may_run_anything(caller: Caller) -> bool:
    """An unlimited admin may run any image: from any host, or one the engine holds locally."""
    return caller.is_admin and not caller.limited


def may_reach_host(caller: Caller, addresses: Iterable[str]) -> bool:
    """Whether the engine may pull from a registry at `addresses` for the caller: never from
    this machine or a private network, unless an unlimited admin asks."""
    return may_run_anything(caller) or not any(internal_address(a) for a in addresses)


def internal_address(address: str) -> bool:
    """Loopback, private, link-local, shared, reserved or unspecified: not the internet."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return True  # not an address: refuse rather than guess
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def literal_addresses(host: str) -> tuple[str, ...] | None:
    """The addresses a host name stands for without asking DNS: `localhost` and `*.localhost`
    (loopback, RFC 6761), IP literals in any form the C library accepts (`2130706433`,
    `127.1`); None when only a resolver can tell."""
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return ("127.0.0.1",)
    try:
        return (str(ipaddress.ip_address(name)),)
    except ValueError:
        pass
    try:
        return (socket.inet_ntoa(socket.inet_aton(name)),)
    except OSError:
        return None
