"""Upgrading a database from before services had owners: they belong to `admin`, and tokens
made then stay unlimited to services."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from baepo.schema import schema
from baepo.store import Database
from baepo.store.migrations import alembic_config, head_revision
from tests.databases import Databases

BEFORE_OWNERS = "052fdd6b99c2"


def test_services_made_before_owners_belong_to_admin(databases: Databases) -> None:
    db = Database(databases.new(migrated=False))
    command.upgrade(alembic_config(db.engine), BEFORE_OWNERS)
    with db.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO control_services (id, name, spec, status, paused, deleting,"
                " created_at, updated_at) VALUES ('s1', 'app', '{}', 'RUNNING', false, false,"
                " '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO auth_users (id, name, password_hash, is_admin, created_at)"
                " VALUES (1, 'alice', 'x', false, '2026-01-01 00:00:00')"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO auth_api_tokens (user_id, name, prefix, secret_hash, repositories,"
                " created_at) VALUES (1, 'ci', 'abcd1234', 'h', 'alice/app',"
                " '2026-01-01 00:00:00')"
            )
        )
    db.migrate(schema())
    with db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT owner FROM control_services")).scalar() == "admin"
        token = conn.execute(sa.text("SELECT repositories, services FROM auth_api_tokens")).one()
        assert tuple(token) == ("alice/app", "")
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    assert version == head_revision()
