"""The room's database sessions: SQLAlchemy's errors (and the store's) become
`PipelinesUnavailable` here, once, for every part of the room that reads or writes its
tables."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from baepo.pipelines.errors import PipelinesUnavailable
from baepo.store import Database, StoreError


@contextmanager
def session(db: Database) -> Iterator[Session]:
    try:
        with db.session() as s:
            yield s
    except (SQLAlchemyError, StoreError) as exc:
        raise PipelinesUnavailable(f"the state database cannot be used: {exc}") from exc
