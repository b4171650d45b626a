"""The state database: SQLAlchemy 2, SQLite by default (PostgreSQL supported by URL)."""

from baepo.store.database import Base, Database, affected, lost_a_race, nul_place, serialize
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
    "known_revision",
    "lost_a_race",
    "nul_place",
    "revision_of",
    "serialize",
    "snapshot",
]
