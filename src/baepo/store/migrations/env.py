"""Alembic's environment: the engine and the declared schema come from Baepo (`alembic_config`)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import MetaData
from sqlalchemy.engine import Engine

engine: Engine = context.config.attributes["engine"]
metadata: MetaData | None = context.config.attributes.get("metadata")

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
