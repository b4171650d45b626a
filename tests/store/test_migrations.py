"""The Alembic revisions and the table declarations agree, and migrating twice is a no-op."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from baepo.schema import schema
from baepo.store import Database


def test_revisions_create_exactly_the_declared_schema(tmp_path: Path) -> None:
    from baepo.store.migrations import upgrade

    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
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


def test_a_fresh_database_is_created_at_head_like_the_revisions_build_it(tmp_path: Path) -> None:
    fresh = Database(f"sqlite:///{tmp_path / 'fresh.db'}")
    fresh.migrate(schema())  # create_all + stamp
    migrated = Database(f"sqlite:///{tmp_path / 'migrated.db'}")
    upgrade_with_alembic(migrated)

    def tables(db: Database) -> list[tuple[str, str]]:
        with db.engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
            )
            return [(name, " ".join(sql.split())) for name, sql in rows]

    with fresh.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), schema()) == []
    assert {n for n, _ in tables(fresh)} == {n for n, _ in tables(migrated)}
    with fresh.engine.connect() as conn:
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    from baepo.store.migrations import head_revision

    assert version == head_revision()


def test_a_database_at_head_is_recognised_without_alembic(tmp_path: Path) -> None:
    from baepo.store.migrations import current_revision, head_revision

    db = Database(f"sqlite:///{tmp_path / 'h.db'}")
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
