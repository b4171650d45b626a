import base64
from pathlib import Path

import pytest

from baepo.auth import (
    AccessDenied,
    Auth,
    AuthenticationRequired,
    NotFound,
    TooManyAttempts,
    UserExists,
    passwords,
    repository,
)
from baepo.auth import tables as _tables  # noqa: F401  (declares the tables)
from baepo.auth.bearer import load_or_create_key
from baepo.clock import FakeClock
from baepo.schema import schema
from baepo.store import Database


def basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def auth(tmp_path: Path, clock: FakeClock, database_url: str) -> Auth:
    db = Database(database_url)
    db.migrate(schema())
    a = Auth(db, load_or_create_key(tmp_path / "key"), clock)
    assert a.ensure_admin("s3cret-admin") is None
    a.create_user("alice", "alice-password")
    return a


def token_for(auth: Auth, authorization: str | None, *scopes: str, public: bool = False) -> str:
    from baepo.auth import parse_scope

    requested = [a for s in scopes if (a := parse_scope(s)) is not None]
    token, ttl, _ = auth.issue_token(authorization, requested, lambda _: public)
    assert ttl == 300
    return "Bearer " + token


def test_first_admin_gets_a_generated_password_shown_once(database_url: str) -> None:
    db = Database(database_url)
    db.migrate(schema())
    a = Auth(db, b"k" * 32, FakeClock())
    generated = a.ensure_admin(None)
    assert generated and len(generated) >= 16
    assert a.ensure_admin(None) is None  # only once
    assert a.authenticate("admin", generated).is_admin


def test_admin_password_from_the_environment_replaces_the_old_one(auth: Auth) -> None:
    auth.ensure_admin("new-password")
    assert auth.authenticate("admin", "new-password").is_admin


def test_wrong_password_is_refused(auth: Auth) -> None:
    with pytest.raises(AuthenticationRequired):
        auth.authenticate("alice", "wrong")
    with pytest.raises(AuthenticationRequired):
        auth.authenticate("nobody", "alice-password")
    with pytest.raises(AuthenticationRequired):
        auth.authorize(basic("alice", "wrong"), repository("alice/app", "pull"))


def test_unknown_user_costs_a_password_check_too(
    auth: Auth, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong name must not be refused faster than a wrong password: both run scrypt."""
    checked: list[str] = []
    real_verify = passwords.verify_password

    def counting_verify(password: str, stored: str) -> bool:
        checked.append(stored)
        return real_verify(password, stored)

    monkeypatch.setattr(passwords, "verify_password", counting_verify)
    for user, attempt in [("alice", "wrong-1"), ("nobody", "wrong-2"), ("nobody", "wrong-3")]:
        with pytest.raises(AuthenticationRequired):
            auth.authenticate(user, attempt)
    assert len(checked) == 3
    assert all(stored.startswith("scrypt$") for stored in checked)
    alice, *unknown = checked
    assert unknown[0] == unknown[1] != alice  # one stand-in hash, made once
    assert not real_verify("wrong-2", unknown[0])


def test_malformed_authorization_is_a_clean_refusal(auth: Auth) -> None:
    for header in (
        "Basic !!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Bearer not.a.jwt",
        "Digest x",
    ):
        with pytest.raises(AuthenticationRequired):
            auth.authorize(header, repository("alice/app", "pull"))


def test_duplicate_and_invalid_users(auth: Auth) -> None:
    with pytest.raises(UserExists):
        auth.create_user("alice", "another-password")
    with pytest.raises(ValueError):
        auth.create_user("Bad Name", "password123")
    with pytest.raises(NotFound):
        auth.delete_user("nobody")


def test_token_flow_grants_only_what_the_user_may_do(auth: Auth) -> None:
    bearer = token_for(
        auth,
        basic("alice", "alice-password"),
        "repository:alice/app:pull,push",
        "repository:bob/app:pull,push",
    )
    assert auth.authorize(bearer, repository("alice/app", "push")).subject == "alice"
    with pytest.raises(AccessDenied):
        auth.authorize(bearer, repository("bob/app", "pull"))
    with pytest.raises(AccessDenied):
        auth.authorize(bearer, repository("alice/app", "delete"))  # not requested


def test_token_expires(auth: Auth, clock: FakeClock) -> None:
    bearer = token_for(auth, basic("admin", "s3cret-admin"), "repository:x:pull")
    auth.authorize(bearer, repository("x", "pull"))
    clock.advance(301)
    with pytest.raises(AuthenticationRequired):
        auth.authorize(bearer, repository("x", "pull"))


def test_token_signed_by_another_key_is_refused(auth: Auth, tmp_path: Path) -> None:
    other = Auth(auth._db, b"x" * 32, FakeClock())
    forged = token_for(other, basic("admin", "s3cret-admin"), "repository:x:pull")
    with pytest.raises(AuthenticationRequired):
        auth.authorize(forged, repository("x", "pull"))


def test_anonymous_may_pull_public_repositories_only(auth: Auth) -> None:
    with pytest.raises(AuthenticationRequired):
        auth.authorize(None, repository("bob/app", "pull"))
    assert auth.authorize(None, repository("bob/app", "pull"), public=True).anonymous
    with pytest.raises(AuthenticationRequired):
        auth.authorize(None, repository("bob/app", "push"), public=True)
    anon = token_for(auth, None, "repository:bob/app:pull,push", public=True)
    auth.authorize(anon, repository("bob/app", "pull"))
    with pytest.raises(AccessDenied):
        auth.authorize(anon, repository("bob/app", "push"))


def test_api_token_works_as_a_password_and_is_limited_to_its_repository(auth: Auth) -> None:
    token = auth.create_token("admin", "ci", ("team/app",))
    assert token.secret is not None
    for user in ("admin", "token"):
        auth.authorize(basic(user, token.secret), repository("team/app", "pull", "push"))
        with pytest.raises(AccessDenied):
            auth.authorize(basic(user, token.secret), repository("team/other", "pull"))
    with pytest.raises(AuthenticationRequired):
        auth.authorize(basic("alice", token.secret), repository("team/app", "pull"))
    bearer = token_for(
        auth,
        basic("token", token.secret),
        "repository:team/app:push,pull",
        "repository:team/other:pull",
    )
    auth.authorize(bearer, repository("team/app", "push"))
    with pytest.raises(AccessDenied):
        auth.authorize(bearer, repository("team/other", "pull"))
    listed = auth.tokens("admin")
    assert [t.name for t in listed] == ["ci"] and listed[0].last_used_at is not None
    assert all(t.secret is None for t in listed)


def test_revoked_token_stops_working(auth: Auth) -> None:
    token = auth.create_token("alice", "laptop")
    assert token.secret is not None
    auth.authorize(basic("alice", token.secret), repository("alice/x", "pull"))
    auth.delete_token("alice", "laptop")
    with pytest.raises(AuthenticationRequired):
        auth.authorize(basic("alice", token.secret), repository("alice/x", "pull"))
    with pytest.raises(NotFound):
        auth.delete_token("alice", "laptop")


def test_a_bearer_token_cannot_mint_another(auth: Auth) -> None:
    bearer = token_for(auth, basic("admin", "s3cret-admin"), "repository:x:pull")
    with pytest.raises(AuthenticationRequired):
        auth.issue_token(bearer, [repository("y", "pull")], lambda _: False)


def test_challenge_names_realm_service_and_scope(auth: Auth) -> None:
    value = auth.challenge("http://127.0.0.1:5000/", repository("team/app", "pull", "push"))
    assert value == (
        'Bearer realm="http://127.0.0.1:5000/auth/token",service="baepo",'
        'scope="repository:team/app:pull,push"'
    )


def test_challenge_lists_every_scope_a_mount_needs(auth: Auth) -> None:
    value = auth.challenge("http://h", repository("b", "pull", "push"), repository("a", "pull"))
    assert value.endswith('scope="repository:b:pull,push repository:a:pull"')


def test_key_is_created_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "token.key"
    key = load_or_create_key(path)
    assert load_or_create_key(path) == key and len(key) == 32
    assert path.stat().st_mode & 0o777 == 0o600


def test_base_check_needs_a_signed_in_caller(auth: Auth) -> None:
    from baepo.auth import Access

    base = Access("registry", "base", frozenset())
    with pytest.raises(AuthenticationRequired):
        auth.authorize(None, base)
    assert auth.authorize(basic("alice", "alice-password"), base).subject == "alice"


def test_a_token_limited_to_services_carries_its_limit_and_has_no_registry(auth: Auth) -> None:
    ci = auth.create_token("alice", "ci", services=("app",))
    both = auth.create_token("alice", "ci-push", ("alice/app",), ("app",))
    assert ci.secret is not None and both.secret is not None
    caller = auth.authenticate("token", ci.secret)
    assert caller.services == ("app",) and caller.repositories == ()
    with pytest.raises(AccessDenied):
        auth.authorize(basic("token", ci.secret), repository("alice/app", "pull"))
    bearer = token_for(auth, basic("token", ci.secret), "repository:alice/app:pull,push")
    with pytest.raises(AccessDenied):
        auth.authorize(bearer, repository("alice/app", "pull"))
    auth.authorize(basic("token", both.secret), repository("alice/app", "pull", "push"))
    listed = {t.name: t for t in auth.tokens("alice")}
    assert listed["ci"].services == ("app",) and listed["ci"].repositories == ()
    assert listed["ci-push"].services == ("app",)
    with pytest.raises(ValueError):
        auth.create_token("alice", "spaced", services=("a b",))


def test_failed_sign_ins_are_refused_early_with_a_wait_then_allowed_again(
    auth: Auth, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = []
    real = passwords.verify_password

    def counting_verify(password: str, stored: str) -> bool:
        checks.append(password)
        return real(password, stored)

    monkeypatch.setattr(passwords, "verify_password", counting_verify)
    for n in range(10):
        with pytest.raises(AuthenticationRequired) as refused:
            auth.authenticate("alice", f"guess-{n}", address="192.0.2.7")
        assert not isinstance(refused.value, TooManyAttempts)
    with pytest.raises(TooManyAttempts) as throttled:
        auth.authenticate("alice", "alice-password", address="192.0.2.7")
    assert throttled.value.retry_after == 5
    assert len(checks) == 10, "a throttled attempt must not cost a password check"
    # The same account from elsewhere waits too; another account from elsewhere does not.
    with pytest.raises(TooManyAttempts):
        auth.authenticate("alice", "alice-password", address="198.51.100.1")
    assert auth.authenticate("admin", "s3cret-admin", address="198.51.100.1").name == "admin"
    clock.advance(5)
    assert auth.authenticate("alice", "alice-password", address="192.0.2.7").name == "alice"


def test_a_verified_credential_is_remembered_so_a_flood_does_not_lock_it_out(
    auth: Auth,
) -> None:
    assert auth.authenticate("alice", "alice-password", address="192.0.2.7").name == "alice"
    for n in range(20):
        with pytest.raises(AuthenticationRequired):
            auth.authenticate("alice", f"guess-{n}", address="192.0.2.66")
    assert auth.authenticate("alice", "alice-password", address="192.0.2.7").name == "alice"


def test_api_tokens_are_not_throttled_by_password_failures(auth: Auth) -> None:
    token = auth.create_token("alice", "ci", ("team/app",)).secret
    assert token is not None
    for n in range(20):
        with pytest.raises(AuthenticationRequired):
            auth.authenticate("alice", f"guess-{n}", address="192.0.2.7")
    assert auth.authenticate("token", token, address="192.0.2.7").name == "alice"


def test_may_pull_is_what_the_catalog_lists(auth: Auth) -> None:
    from baepo.auth import Principal

    alice = Principal("alice")
    assert auth.may_pull(alice, "alice/app", public=False)
    assert not auth.may_pull(alice, "bob/app", public=False)
    assert auth.may_pull(alice, "bob/app", public=True)
    assert auth.may_pull(Principal("admin", True), "bob/app", public=False)
    assert not auth.may_pull(Principal(""), "bob/app", public=False)
