"""`PushLog`: every manifest push, in order — the durable log auto-deploy follows.

A push's row is written in the same transaction as its manifest and tag (manifest_store.py),
so the log never names a push that did not happen, nor misses one that did; the event on
the bus only wakes its readers up early.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from baepo.registry import tables as t
from baepo.registry.context import RegistryContext


@dataclass(frozen=True)
class PushEvent:
    id: int
    repository: str
    tag: str | None
    digest: str
    media_type: str
    actor: str
    at: datetime


class PushLog:
    def __init__(self, ctx: RegistryContext) -> None:
        self._ctx = ctx

    def newest(self, repository: str | None = None, limit: int = 100) -> list[PushEvent]:
        """Manifest pushes, newest first."""
        query = sa.select(t.PushRecord).order_by(t.PushRecord.id.desc()).limit(limit)
        if repository is not None:
            query = query.where(t.PushRecord.repository == repository)
        return self._events(query)

    def after(self, position: int, limit: int = 100) -> list[PushEvent]:
        """Manifest pushes with an id above `position`, oldest first: the durable log the
        control room's auto-deploy follows with a cursor of its own."""
        query = (
            sa.select(t.PushRecord)
            .where(t.PushRecord.id > position)
            .order_by(t.PushRecord.id)
            .limit(limit)
        )
        return self._events(query)

    def _events(self, query: sa.Select[t.PushRecord]) -> list[PushEvent]:
        with self._ctx.records.read() as s:
            rows = s.scalars(query).all()
        return [
            PushEvent(r.id, r.repository, r.tag, r.digest, r.media_type, r.actor, r.at)
            for r in rows
        ]
