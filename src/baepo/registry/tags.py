"""`TagStore`: a repository's tags, each naming one manifest digest (distribution's tag store).

A tag moves with an UPDATE (`set`, inside a manifest push's transaction); it is listed in
lexical order, a page at a time (pagination.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from baepo.registry import tables as t
from baepo.registry.context import RegistryContext
from baepo.registry.errors import ManifestUnknown
from baepo.registry.pagination import Page, paginate
from baepo.store import affected


class TagStore:
    def __init__(self, ctx: RegistryContext) -> None:
        self._ctx = ctx

    def page(self, name: str, n: int | None = None, last: str | None = None) -> Page:
        records = self._ctx.records
        with records.read() as s:
            repo_id = records.repo_id(s, name)
            names = s.scalars(
                sa.select(t.TagRecord.name).where(t.TagRecord.repository_id == repo_id)
            ).all()
        return paginate(names, n, last)

    def delete(self, name: str, tag: str) -> None:
        records = self._ctx.records

        def work(s: Session) -> None:
            repo_id = records.repo_id(s, name)
            gone = s.execute(
                sa.delete(t.TagRecord).where(
                    t.TagRecord.repository_id == repo_id, t.TagRecord.name == tag
                )
            )
            if affected(gone) == 0:
                raise ManifestUnknown("manifest tag unknown", {"tag": tag})

        records.write(work)
