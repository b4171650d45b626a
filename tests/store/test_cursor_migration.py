"""Upgrading a database from before auto-deploy followed the push log: the cursor starts at
the newest push (those were decided when they happened), so none deploys twice."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from baepo.schema import schema
from baepo.store import Database
from baepo.store.migrations import alembic_config
from tests.databases import Databases

BEFORE_CURSORS = "f66c036f8f72"


def test_the_push_cursor_starts_at_the_newest_push(databases: Databases) -> None:
    db = Database(databases.new(migrated=False))
    command.upgrade(alembic_config(db.engine), BEFORE_CURSORS)
    with db.engine.begin() as conn:
        for n in (1, 2, 3):
            conn.execute(
                sa.text(
                    "INSERT INTO registry_push_events (id, repository, tag, digest, media_type,"
                    " actor, at) VALUES (:id, 'team/app', '1', :digest, 'm', 'alice',"
                    " '2026-01-01 00:00:00')"
                ),
                {"id": n, "digest": f"sha256:{n:064x}"},
            )
    db.migrate(schema())
    with db.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT name, position FROM control_cursors")).all()
    assert [tuple(r) for r in rows] == [("push", 3)]


def test_a_new_database_starts_with_no_cursor(databases: Databases) -> None:
    db = Database(databases.new(migrated=False))
    db.migrate(schema())
    with db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM control_cursors")).scalar() == 0
