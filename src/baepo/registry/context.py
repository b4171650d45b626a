"""`RegistryContext`: what every concern of the registry works over, passed explicitly.

The registry is split by concern, as distribution splits its stores: repositories, tags,
manifests (manifest_store), blobs and their links (blobs), referrers, the push log (pushes),
uploads and gc. Each takes this one context and nothing else of the others' internals;
`Registry` (service.py) builds it once and is a thin facade over the concerns.

    records    the database, in short transactions (records.py)
    driver     the blob bytes (baepo.storage)
    clock      now, injected
    guard      orders blob commits against the garbage collector's sweep (records.py), in
               this process and, on PostgreSQL, in every process sharing the database
    sessions   the upload sessions held in memory, shared by uploads, repository deletes
               and the gc (sessions.py)
    process    this process among those sharing the database (its advertised address),
               which names the upload holds its requests take (sessions.py); None when it is
               alone (SQLite): what it holds in memory is all there is, no holds are taken
"""

from __future__ import annotations

from dataclasses import dataclass

from baepo.clock import Clock
from baepo.registry.records import BlobGuard, Records
from baepo.registry.sessions import LiveSessions
from baepo.storage import StorageDriver
from baepo.store import Database
from baepo.store.locks import SessionLocks


@dataclass(frozen=True)
class RegistryContext:
    records: Records
    driver: StorageDriver
    clock: Clock
    guard: BlobGuard
    sessions: LiveSessions
    process: str | None = None

    @classmethod
    def create(
        cls, db: Database, driver: StorageDriver, clock: Clock, process: str | None = None
    ) -> RegistryContext:
        across = SessionLocks(db) if process is not None and not db.is_sqlite else None
        guard = BlobGuard(across)
        return cls(Records(db, clock), driver, clock, guard, LiveSessions(), process)
