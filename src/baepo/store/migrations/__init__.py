"""Schema migrations (Alembic), run by `Database.migrate()` at every start.

Revisions live in `versions/`; `scripts/new-migration "what changed"` writes the next one by
comparing the table declarations with a database at the current head.

A database already at the head revision is recognised without importing Alembic (reading
`alembic_version` and the revision files' headers), and an empty one gets the declared schema
directly and is stamped at head (`tests/store/test_migrations.py` checks that the revisions
build exactly that schema). Alembic and Mako are loaded only to upgrade an older database,
which keeps them out of the server's memory.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy import MetaData
from sqlalchemy.engine import Engine

if TYPE_CHECKING:
    from alembic.config import Config

HERE = Path(__file__).resolve().parent
_REVISION = re.compile(r'^revision: str = "([0-9a-f]+)"', re.MULTILINE)
_DOWN = re.compile(r'^down_revision: str \| None = (?:"([0-9a-f]+)"|None)', re.MULTILINE)


def alembic_config(engine: Engine, metadata: MetaData | None = None) -> Config:
    """Alembic's configuration for `engine`; `metadata` (the declared schema) is needed only to
    write a new revision by comparison, not to upgrade."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(HERE))
    # ConfigParser reads `%` as interpolation: a URL's quoted characters (a socket directory
    # `%2Frun%2F…`, a password's) are doubled to stay themselves.
    url = engine.url.render_as_string(hide_password=False)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["engine"] = engine
    config.attributes["metadata"] = metadata
    return config


def head_revision(versions: Path = HERE / "versions") -> str | None:
    """The one revision no other revision names as its parent."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in versions.glob("*.py"):
        text = path.read_text()
        found = _REVISION.search(text)
        if found:
            revisions.add(found.group(1))
        down = _DOWN.search(text)
        if down and down.group(1):
            parents.add(down.group(1))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine, metadata: MetaData) -> None:
    head = head_revision()
    current = current_revision(engine)
    if head is not None and current == head:
        return
    if head is not None and current is None and not sa.inspect(engine).get_table_names():
        _create_at_head(engine, head, metadata)
        return
    from alembic import command

    command.upgrade(alembic_config(engine), "head")


def _create_at_head(engine: Engine, head: str, metadata: MetaData) -> None:
    with engine.begin() as conn:
        metadata.create_all(conn)
        conn.execute(
            sa.text(
                "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
                "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
            )
        )
        conn.execute(sa.text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": head})


def new_revision(engine: Engine, metadata: MetaData, message: str) -> None:
    from alembic import command

    command.revision(alembic_config(engine, metadata), message=message, autogenerate=True)
