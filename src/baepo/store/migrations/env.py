"""Alembic's environment: the engine comes from Baepo, the metadata from every room."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Engine

from baepo.store.database import Base
from baepo.store.schema import load_tables

load_tables()
engine: Engine = context.config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
