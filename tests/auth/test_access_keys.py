"""Access keys: made for a token, carrying its rights, stored sealed, revoked with the token."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from baepo.auth import AccessKeys, Auth, NotFound
from baepo.auth.tables import AccessKeyRow
from baepo.clock import FakeClock
from baepo.control import SecretBox
from baepo.schema import schema
from baepo.store import Database


@pytest.fixture
def db(database_url: str) -> Database:
    database = Database(database_url)
    database.migrate(schema())
    return database


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def auth(db: Database, clock: FakeClock) -> Auth:
    a = Auth(db, b"k" * 32, clock)
    a.ensure_admin("s3cret-admin")
    a.create_user("alice", "alice-password")
    return a


@pytest.fixture
def keys(db: Database, clock: FakeClock) -> AccessKeys:
    return AccessKeys(db, SecretBox(SecretBox.generate_key()), clock)


def test_a_key_signs_with_its_tokens_rights(auth: Auth, keys: AccessKeys) -> None:
    auth.create_token("alice", "ci", repositories=("alice/app",), services=("app",))
    made = keys.create("alice", "ci")
    assert made.key_id.startswith("BKIA") and len(made.key_id) == 20
    assert made.secret is not None and len(made.secret) == 40
    found = keys.signing_key(made.key_id)
    assert found is not None and found.secret == made.secret
    caller = found.caller
    assert (caller.name, caller.is_admin) == ("alice", False)
    assert caller.repositories == ("alice/app",) and caller.services == ("app",)
    assert caller.token == auth.tokens("alice")[0].id


def test_the_secret_is_stored_sealed(auth: Auth, keys: AccessKeys, db: Database) -> None:
    auth.create_token("alice", "ci")
    made = keys.create("alice", "ci")
    assert made.secret is not None
    with db.session() as s:
        stored = s.scalar(sa.select(AccessKeyRow.sealed_secret))
    assert stored and made.secret not in stored


def test_deleting_the_token_or_the_key_revokes_it(auth: Auth, keys: AccessKeys) -> None:
    auth.create_token("alice", "ci")
    first, second = keys.create("alice", "ci"), keys.create("alice", "ci")
    keys.delete("alice", first.key_id)
    assert keys.signing_key(first.key_id) is None
    assert keys.signing_key(second.key_id) is not None
    auth.delete_token("alice", "ci")
    assert keys.signing_key(second.key_id) is None
    assert keys.keys("alice") == []


def test_keys_belong_to_their_users_tokens(auth: Auth, keys: AccessKeys) -> None:
    auth.create_token("alice", "ci")
    auth.create_token("alice", "laptop")
    auth.create_token("admin", "ops")
    ci = keys.create("alice", "ci")
    keys.create("alice", "laptop")
    with pytest.raises(NotFound):
        keys.create("alice", "ops")  # admin's token, not alice's
    assert [k.token for k in keys.keys("alice")] == ["ci", "laptop"]
    assert [k.key_id for k in keys.keys("alice", "ci")] == [ci.key_id]
    with pytest.raises(NotFound):
        keys.delete("admin", ci.key_id)
    with pytest.raises(NotFound):
        keys.delete("alice", ci.key_id, "laptop")
    auth.delete_user("alice")
    assert keys.signing_key(ci.key_id) is None


def test_use_is_recorded_at_most_once_a_minute(
    auth: Auth, keys: AccessKeys, clock: FakeClock
) -> None:
    auth.create_token("alice", "ci")
    made = keys.create("alice", "ci")
    assert keys.keys("alice")[0].last_used_at is None
    keys.signing_key(made.key_id)
    first = keys.keys("alice")[0].last_used_at
    assert first == clock.now()
    clock.advance(30)
    keys.signing_key(made.key_id)
    assert keys.keys("alice")[0].last_used_at == first
    clock.advance(31)
    keys.signing_key(made.key_id)
    assert keys.keys("alice")[0].last_used_at == clock.now()
