import pytest

from baepo.auth.access import CATALOG, Access, Principal, parse_scope, repository
from baepo.auth.rights import (
    Caller,
    ServiceAction,
    allowed,
    internal_address,
    literal_addresses,
    may_on_services,
    may_own,
    may_reach_host,
    may_run_from_registry,
    service_reach,
)

ALICE = Caller("alice")
ADMIN = Caller("root", is_admin=True)
ANON = Caller("")
ROBOT = Caller("alice", repositories=("alice/app",))
ROBOT_PREFIX = Caller("root", is_admin=True, repositories=("team/*",))


@pytest.mark.parametrize(
    ("caller", "wanted", "public", "expected"),
    [
        (ADMIN, repository("team/app", "pull", "push"), False, {"pull", "push"}),
        (ADMIN, repository("x", "delete"), False, {"delete"}),
        (
            ALICE,
            repository("alice/app", "pull", "push", "delete"),
            False,
            {"pull", "push", "delete"},
        ),
        (ALICE, repository("alice", "pull"), False, set()),  # the namespace, not the name
        (ALICE, repository("alicex/app", "pull"), False, set()),
        (ALICE, repository("bob/app", "pull", "push"), False, set()),
        (ALICE, repository("bob/app", "pull", "push"), True, {"pull"}),
        (ANON, repository("bob/app", "pull"), True, {"pull"}),
        (ANON, repository("bob/app", "pull"), False, set()),
        (ANON, repository("bob/app", "push"), True, set()),
        (ROBOT, repository("alice/app", "pull", "push"), False, {"pull", "push"}),
        (ROBOT, repository("alice/other", "pull"), False, set()),
        (ROBOT, repository("bob/public", "pull"), True, set()),
        (ROBOT_PREFIX, repository("team/app/api", "push"), False, {"push"}),
        (ROBOT_PREFIX, repository("other/app", "push"), False, set()),
        (ADMIN, repository("x", "pull", "bogus"), False, {"pull"}),
        (ALICE, Access("registry", "catalog", frozenset({"*"})), False, {"*"}),
        (ANON, Access("registry", "catalog", frozenset({"*"})), False, set()),
        (ROBOT, Access("registry", "catalog", frozenset({"*"})), False, set()),
        (ADMIN, Access("widget", "x", frozenset({"pull"})), False, set()),
    ],
)
def test_allowed(caller: Caller, wanted: Access, public: bool, expected: set[str]) -> None:
    assert allowed(caller, wanted, public) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("repository:team/app:pull,push", repository("team/app", "pull", "push")),
        ("repository:team/app:pull", repository("team/app", "pull")),
        ("repository:localhost:5000/app:pull", repository("localhost:5000/app", "pull")),
        ("registry:catalog:*", Access("registry", "catalog", frozenset({"*"}))),
        ("repository:app:", repository("app")),
        ("repository", None),
        ("repository:pull", None),
        (":app:pull", None),
        ("repository::pull", None),
    ],
)
def test_parse_scope(text: str, expected: Access | None) -> None:
    assert parse_scope(text) == expected


def test_principal_allows_only_what_was_granted() -> None:
    p = Principal("ci", granted=(repository("team/app", "pull", "push"),))
    assert p.allows(repository("team/app", "pull"))
    assert p.allows(repository("team/app", "pull", "push"))
    assert not p.allows(repository("team/app", "delete"))
    assert not p.allows(repository("team/other", "pull"))
    assert repository("team/app", "push", "pull").scope() == "repository:team/app:pull,push"


SERVICE_TOKEN = Caller("alice", services=("app",))
BOTH = Caller("alice", repositories=("alice/app",), services=("app",))
ADMIN_SERVICE_TOKEN = Caller("root", is_admin=True, services=("app",))


@pytest.mark.parametrize(
    ("caller", "wanted", "expected"),
    [
        (SERVICE_TOKEN, repository("alice/app", "pull"), set()),  # nothing in the registry
        (SERVICE_TOKEN, CATALOG, set()),
        (BOTH, repository("alice/app", "pull", "push"), {"pull", "push"}),
        (BOTH, repository("alice/other", "pull"), set()),
        (BOTH, CATALOG, set()),
    ],
)
def test_tokens_limited_to_services_in_the_registry(
    caller: Caller, wanted: Access, expected: set[str]
) -> None:
    assert allowed(caller, wanted, public=False) == expected


@pytest.mark.parametrize(
    ("caller", "owners", "services", "may"),
    [
        (ADMIN, None, None, set(ServiceAction)),
        (ALICE, {"alice"}, None, set(ServiceAction)),
        (SERVICE_TOKEN, {"alice"}, {"app"}, {ServiceAction.READ, ServiceAction.DEPLOY}),
        (ADMIN_SERVICE_TOKEN, None, {"app"}, {ServiceAction.READ, ServiceAction.DEPLOY}),
        (ROBOT, {"alice"}, None, set()),  # a token for repositories has nothing on services
        (ANON, set(), None, set()),
    ],
)
def test_service_reach_and_actions(
    caller: Caller, owners: set[str] | None, services: set[str] | None, may: set[ServiceAction]
) -> None:
    reach = service_reach(caller)
    assert reach.owners == (None if owners is None else frozenset(owners))
    assert reach.services == (None if services is None else frozenset(services))
    assert {a for a in ServiceAction if may_on_services(caller, a)} == may


def test_who_may_own_a_service() -> None:
    assert may_own(ALICE, "alice") and not may_own(ALICE, "team")
    assert may_own(ADMIN, "team") and may_own(ADMIN, "alice")
    assert not may_own(SERVICE_TOKEN, "alice") and not may_own(ROBOT, "alice")
    assert not may_own(ANON, "")


@pytest.mark.parametrize(
    ("caller", "name", "public", "expected"),
    [
        (ALICE, "alice/app", False, True),
        (ALICE, "bob/app", False, False),
        (ALICE, "bob/app", True, True),
        (ALICE, "team/app", False, False),
        (ADMIN, "bob/app", False, True),
        (SERVICE_TOKEN, "alice/other", False, True),  # its user's rights: alice's own image
        (SERVICE_TOKEN, "bob/app", False, False),
        (BOTH, "alice/other", False, False),  # the repository limit holds
        (ROBOT_PREFIX, "other/app", False, False),
    ],
)
def test_may_run_from_registry(caller: Caller, name: str, public: bool, expected: bool) -> None:
    assert may_run_from_registry(caller, name, public) is expected


@pytest.mark.parametrize(
    ("address", "internal"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("10.0.0.1", True),
        ("172.16.5.4", True),
        ("192.168.0.1", True),
        ("169.254.169.254", True),
        ("fe80::1%eth0", True),
        ("fd00::1", True),
        ("100.64.0.1", True),  # shared address space (carrier NAT)
        ("0.0.0.0", True),
        ("224.0.0.1", True),
        ("not an address", True),
        ("93.184.216.34", False),
        ("2606:2800:220:1:248:1893:25c8:1946", False),
    ],
)
def test_internal_addresses(address: str, internal: bool) -> None:
    assert internal_address(address) is internal
    assert may_reach_host(ALICE, [address]) is not internal
    assert may_reach_host(ADMIN, [address])  # an unlimited admin may
    assert may_reach_host(ADMIN_SERVICE_TOKEN, [address]) is not internal


@pytest.mark.parametrize(
    ("host", "addresses"),
    [
        ("localhost", ("127.0.0.1",)),
        ("LOCALHOST.", ("127.0.0.1",)),
        ("app.localhost", ("127.0.0.1",)),
        ("127.0.0.1", ("127.0.0.1",)),
        ("2130706433", ("127.0.0.1",)),
        ("0x7f.1", ("127.0.0.1",)),
        ("127.1", ("127.0.0.1",)),
        ("registry.example.com", None),
    ],
)
def test_literal_addresses(host: str, addresses: tuple[str, ...] | None) -> None:
    assert literal_addresses(host) == addresses
