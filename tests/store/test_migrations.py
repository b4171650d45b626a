"""The Alembic revisions and the table declarations agree, on SQLite and on PostgreSQL, and
migrating twice is a no-op."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from baepo.schema import schema
from baepo.store import Database
from tests.databases import Databases


def test_revisions_create_exactly_the_declared_schema(databases: Databases) -> None:
    from baepo.store.migrations import upgrade

    db = Database(databases.new(migrated=False))
    upgrade_with_alembic(db)
    upgrade(db.engine, schema())  # at head: nothing to do
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), schema())
    assert diff == [], "table declarations changed: run scripts/new-migration 'what changed'"
    names = set(sa.inspect(db.engine).get_table_names())
    assert {"auth_users", "registry_manifests", "alembic_version"} <= names


def upgrade_with_alembic(db: Database) -> None:
    from alembic import command

    from baepo.store.migrations import alembic_config

    command.upgrade(alembic_config(db.engine), "head")


def test_a_fresh_database_is_created_at_head_like_the_revisions_build_it(
    databases: Databases,
) -> None:
    fresh = Database(databases.new(migrated=False))
    fresh.migrate(schema())  # create_all + stamp
    migrated = Database(databases.new(migrated=False))
    upgrade_with_alembic(migrated)

    with fresh.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), schema()) == []
    assert shape(fresh) == shape(migrated)
    with fresh.engine.connect() as conn:
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    from baepo.store.migrations import head_revision

    assert version == head_revision()
    fresh.dispose()
    migrated.dispose()


def shape(db: Database) -> dict[str, Any]:
    """Every table's columns (with types, nullability and defaults), keys and indexes (a
    column added by a later revision comes last, where a fresh table has it in its place)."""
    found = sa.inspect(db.engine)
    return {
        table: (
            sorted(
                (c["name"], str(c["type"]), c["nullable"], c.get("default"))
                for c in found.get_columns(table)
            ),
            found.get_pk_constraint(table)["constrained_columns"],
            sorted(
                (fk["constrained_columns"], fk["referred_table"], fk["options"])
                for fk in found.get_foreign_keys(table)
            ),
            sorted(str(u["column_names"]) for u in found.get_unique_constraints(table)),
            sorted(
                (i["name"], i["column_names"], i["unique"], options(i.get("dialect_options")))
                for i in found.get_indexes(table)
            ),
        )
        for table in sorted(found.get_table_names())
    }


def options(dialect_options: dict[str, Any] | None) -> list[tuple[str, str]]:
    """An index's options as text (a partial index's WHERE is a clause object)."""
    return sorted((key, str(value)) for key, value in (dialect_options or {}).items())


def test_a_database_at_head_is_recognised_without_alembic(databases: Databases) -> None:
    from baepo.store.migrations import current_revision, head_revision

    db = Database(databases.new(migrated=False))
    assert current_revision(db.engine) is None
    db.migrate(schema())
    assert head_revision() is not None
    assert current_revision(db.engine) == head_revision()


def test_head_is_the_revision_no_other_names_as_parent(tmp_path: Path) -> None:
    from baepo.store.migrations import head_revision

    for name, rev, down in (("a", "aaa1", None), ("b", "bbb2", "aaa1"), ("c", "ccc3", "bbb2")):
        parent = f'"{down}"' if down else "None"
        (tmp_path / f"{name}.py").write_text(
            f'revision: str = "{rev}"\ndown_revision: str | None = {parent}\n'
        )
    assert head_revision(tmp_path) == "ccc3"
