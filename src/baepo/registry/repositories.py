"""`RepositoryStore`: repositories — created by a push or on purpose, public or not, their tags
mutable or not, listed, deleted.

A repository's row owns its tags, manifests and blob links; deleting it forgets them and its
upload sessions at once, and leaves the bytes to the garbage collector (another repository
may link the same blobs).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from baepo.registry import tables as t
from baepo.registry.context import RegistryContext
from baepo.registry.errors import NameUnknown
from baepo.registry.mutability import TagMutability
from baepo.registry.pagination import Page, paginate
from baepo.registry.references import check_name
from baepo.storage import StorageError


@dataclass(frozen=True)
class RepositoryInfo:
    name: str
    public: bool
    created_at: datetime
    tag_count: int = 0  # filled by `RepositoryStore.all()` (one grouped query for all of them)
    mutability: TagMutability = field(default_factory=TagMutability)
    lifecycle_policy: str | None = None
    lifecycle_evaluated_at: datetime | None = None
    lifecycle_preview: str | None = None

    @classmethod
    def of(cls, repo: t.RepositoryRecord, tag_count: int = 0) -> RepositoryInfo:
        mutability = TagMutability(repo.immutable_tags, tuple(repo.tag_exceptions.split()))
        return cls(
            repo.name,
            repo.public,
            repo.created_at,
            tag_count,
            mutability,
            repo.lifecycle_policy,
            repo.lifecycle_evaluated_at,
            repo.lifecycle_preview,
        )


class RepositoryStore:
    def __init__(self, ctx: RegistryContext) -> None:
        self._ctx = ctx

    def is_public(self, name: str) -> bool:
        with self._ctx.records.conn() as c:
            found = c.scalar(
                sa.select(t.RepositoryRecord.public).where(t.RepositoryRecord.name == name)
            )
        return bool(found)

    def create(self, name: str, *, public: bool = False) -> RepositoryInfo:
        """Create the repository if it is new (idempotent); pushing also creates it."""
        check_name(name)
        records = self._ctx.records

        def work(s: Session) -> RepositoryInfo:
            repo = s.get(t.RepositoryRecord, records.repo_id(s, name, create=True))
            assert repo is not None
            if public and not repo.public:
                repo.public = True
            return RepositoryInfo.of(repo)

        return records.write(work)

    def set_public(self, name: str, public: bool) -> None:
        """Allow (or stop) anonymous pulls; creates the repository if it is new."""
        self._update(name, create=True, public=public)

    def set_mutability(self, name: str, mutability: TagMutability) -> None:
        """Whether its pushed tags may move (creates the repository if it is new)."""
        exceptions = " ".join(mutability.exceptions)
        self._update(
            name, create=True, immutable_tags=mutability.immutable, tag_exceptions=exceptions
        )

    def set_lifecycle_policy(self, name: str, text: str | None) -> None:
        """Keep `text` (checked by the caller) as the repository's policy; None removes it."""
        self._update(name, lifecycle_policy=text)

    def set_lifecycle_preview(self, name: str, text: str) -> None:
        """Keep the policy a lifecycle preview was started with (checked by the caller)."""
        self._update(name, lifecycle_preview=text)

    def mark_evaluated(self, name: str, at: datetime) -> None:
        """The repository's lifecycle policy was applied at `at`."""
        self._update(name, lifecycle_evaluated_at=at)

    def _update(self, name: str, *, create: bool = False, **values: object) -> None:
        """Set the repository row's `values` (NameUnknown if there is none and not `create`)."""
        if create:
            check_name(name)
        records = self._ctx.records

        def work(s: Session) -> None:
            repo_id = records.repo_id(s, name, create=create)
            s.execute(
                sa.update(t.RepositoryRecord)
                .where(t.RepositoryRecord.id == repo_id)
                .values(**values)
            )

        records.write(work)

    def get(self, name: str) -> RepositoryInfo:
        with self._ctx.records.read() as s:
            repo = s.scalar(sa.select(t.RepositoryRecord).where(t.RepositoryRecord.name == name))
        if repo is None:
            raise NameUnknown("repository name not known to registry", {"name": name})
        return RepositoryInfo.of(repo)

    def all(self) -> list[RepositoryInfo]:
        """Every repository, in lexical order, with its number of tags (one query)."""
        counts = (
            sa.select(t.TagRecord.repository_id, sa.func.count().label("n"))
            .group_by(t.TagRecord.repository_id)
            .subquery()
        )
        r = t.RepositoryRecord
        query = sa.select(r, counts.c.n).outerjoin(counts, counts.c.repository_id == r.id)
        with self._ctx.records.read() as s:
            found = [RepositoryInfo.of(repo, n or 0) for repo, n in s.execute(query).all()]
        return sorted(found, key=lambda info: info.name.encode())

    def catalog(
        self,
        n: int | None = None,
        last: str | None = None,
        visible: Callable[[str, bool], bool] | None = None,
    ) -> Page:
        """A page of repository names; with `visible` (name, public) only those it accepts."""
        with self._ctx.records.read() as s:
            rows = s.execute(sa.select(t.RepositoryRecord.name, t.RepositoryRecord.public)).all()
        names = [name for name, public in rows if visible is None or visible(name, public)]
        return paginate(names, n, last)

    def delete(self, name: str) -> None:
        """Forget the repository, its tags, manifests and links (bytes go at the next gc)."""
        ctx = self._ctx

        def work(s: Session) -> list[str]:
            repo_id = ctx.records.repo_id(s, name)
            uploads = s.scalars(
                sa.select(t.UploadRecord.id).where(t.UploadRecord.repository == name)
            ).all()
            s.execute(sa.delete(t.UploadRecord).where(t.UploadRecord.repository == name))
            manifest_ids = sa.select(t.ManifestRecord.id).where(
                t.ManifestRecord.repository_id == repo_id
            )
            s.execute(
                sa.delete(t.ManifestReference).where(
                    t.ManifestReference.manifest_id.in_(manifest_ids)
                )
            )
            for table in (t.TagRecord, t.ManifestRecord, t.BlobLink):
                s.execute(sa.delete(table).where(table.repository_id == repo_id))
            s.execute(sa.delete(t.RepositoryRecord).where(t.RepositoryRecord.id == repo_id))
            return list(uploads)

        for upload_id in ctx.records.write(work):
            ctx.sessions.forget(upload_id)
            with suppress(StorageError):
                ctx.driver.delete_upload(upload_id)
