"""Schema migrations.

Until the first release the schema is created from the table declarations
(`Base.metadata.create_all`), which is idempotent; Alembic revisions start at the first
schema change after a release and run from here.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine


def upgrade(engine: Engine) -> None:
    from baepo.store.database import Base

    Base.metadata.create_all(engine)
