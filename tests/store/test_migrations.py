"""The Alembic revisions and the table declarations agree, and migrating twice is a no-op."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from baepo.store import Base, Database
from baepo.store.schema import load_tables


def test_revisions_create_exactly_the_declared_schema(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    db.migrate()
    db.migrate()
    load_tables()
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], "table declarations changed: run scripts/new-migration 'what changed'"
    names = set(sa.inspect(db.engine).get_table_names())
    assert {"auth_users", "registry_manifests", "alembic_version"} <= names
