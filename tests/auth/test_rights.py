import pytest

from baepo.auth.access import Access, Principal, parse_scope, repository
from baepo.auth.rights import Caller, allowed

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
