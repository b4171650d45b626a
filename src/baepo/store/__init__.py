"""The state database: SQLAlchemy 2, SQLite by default (PostgreSQL supported by URL)."""

from baepo.store.database import Base, Database, affected, holds_nul, lost_a_race, serialize
from baepo.store.errors import StoreError, StoreUnavailable
from baepo.store.snapshots import known_revision, revision_of, snapshot
from baepo.store.types import UtcDateTime

__all__ = [
    "Base",
    "Database",
    "StoreError",
    "StoreUnavailable",
    "UtcDateTime",
    "affected",
    "holds_nul",
    "known_revision",
    "lost_a_race",
    "revision_of",
    "serialize",
    "snapshot",
]
