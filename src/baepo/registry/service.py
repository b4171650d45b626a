"""`Registry`: the registry as plain Python, for the HTTP edge, the API room and the CLI.

Every method is synchronous and short: one database transaction, at most one driver call.
The HTTP edge runs them in a worker thread. SQLAlchemy and storage errors are mapped here to
`RegistryUnavailable` (or the registry error they mean), once.

Consistency rules the methods keep:
- Bytes first, rows second: a manifest's bytes are stored (durably) before its row exists,
  and a blob row is written only after the driver committed the blob. A crash in between
  leaves bytes without a row, which the garbage collector removes after its grace period.
- A manifest push touches every blob it references (`touched_at`) in the same transaction
  that checks they exist, so the collector never sweeps a blob a push is relying on.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from baepo.clock import Clock
from baepo.events import EventBus, ImagePushed
from baepo.registry import tables as t
from baepo.registry.errors import (
    BlobUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestTooLarge,
    ManifestUnknown,
    NameUnknown,
    RegistryUnavailable,
)
from baepo.registry.manifests import MAX_MANIFEST_BYTES, Descriptor, parse_manifest
from baepo.registry.pagination import Page, paginate
from baepo.registry.records import BlobGuard, Records, storage_call
from baepo.registry.references import Digest, check_name, parse_digest, parse_reference
from baepo.storage import BlobInfo, BlobNotFound, StorageDriver, StorageError
from baepo.store import Database

if TYPE_CHECKING:
    from baepo.registry.gc import GcReport
    from baepo.registry.sessions import UploadSessions

T = TypeVar("T")


@dataclass(frozen=True)
class RepositoryInfo:
    name: str
    public: bool
    created_at: datetime
    tag_count: int = 0  # filled by `repositories()` (one grouped query for all of them)


@dataclass(frozen=True)
class StoredManifest:
    repository: str
    digest: str
    media_type: str
    size: int


@dataclass(frozen=True)
class PushResult:
    repository: str
    digest: str
    media_type: str
    size: int
    tag: str | None
    subject: str | None


@dataclass(frozen=True)
class ImageInfo:
    """A manifest in a repository, with the tags that point to it (newest first in lists)."""

    digest: str
    media_type: str
    size: int
    tags: tuple[str, ...]
    artifact_type: str | None
    subject: str | None
    pushed_at: datetime
    pushed_by: str


@dataclass(frozen=True)
class PushEvent:
    id: int
    repository: str
    tag: str | None
    digest: str
    media_type: str
    actor: str
    at: datetime


class Registry:
    def __init__(
        self,
        db: Database,
        driver: StorageDriver,
        bus: EventBus,
        clock: Clock,
        *,
        max_manifest_bytes: int = MAX_MANIFEST_BYTES,
    ) -> None:
        from baepo.registry.sessions import UploadSessions

        self.db = db
        self.driver = driver
        self.bus = bus
        self.clock = clock
        self.max_manifest_bytes = max_manifest_bytes
        # Upload commits, manifest pushes and mounts hold it shared, the garbage collector's
        # sweep exclusively: a blob never disappears while a push is turning into its rows.
        self.blob_guard = BlobGuard()
        self.records = Records(db, clock)
        self.uploads: UploadSessions = UploadSessions(self)

    # -- repositories ----------------------------------------------------------------------
    def is_public(self, name: str) -> bool:
        with self.records.conn() as c:
            found = c.scalar(
                sa.select(t.RepositoryRecord.public).where(t.RepositoryRecord.name == name)
            )
        return bool(found)

    def create_repository(self, name: str, *, public: bool = False) -> RepositoryInfo:
        """Create the repository if it is new (idempotent); pushing also creates it."""
        check_name(name)

        def work(s: Session) -> RepositoryInfo:
            repo = s.get(t.RepositoryRecord, self.records.repo_id(s, name, create=True))
            assert repo is not None
            if public and not repo.public:
                repo.public = True
            return RepositoryInfo(repo.name, repo.public, repo.created_at)

        return self.records.write(work)

    def set_public(self, name: str, public: bool) -> None:
        """Allow (or stop) anonymous pulls; creates the repository if it is new."""
        check_name(name)

        def work(s: Session) -> None:
            repo_id = self.records.repo_id(s, name, create=True)
            s.execute(
                sa.update(t.RepositoryRecord)
                .where(t.RepositoryRecord.id == repo_id)
                .values(public=public)
            )

        self.records.write(work)

    def repository(self, name: str) -> RepositoryInfo:
        with self.records.read() as s:
            repo = s.scalar(sa.select(t.RepositoryRecord).where(t.RepositoryRecord.name == name))
        if repo is None:
            raise NameUnknown("repository name not known to registry", {"name": name})
        return RepositoryInfo(repo.name, repo.public, repo.created_at)

    def repositories(self) -> list[RepositoryInfo]:
        """Every repository, in lexical order, with its number of tags."""
        counts = (
            sa.select(t.TagRecord.repository_id, sa.func.count().label("n"))
            .group_by(t.TagRecord.repository_id)
            .subquery()
        )
        r = t.RepositoryRecord
        query = sa.select(r.name, r.public, r.created_at, counts.c.n).outerjoin(
            counts, counts.c.repository_id == r.id
        )
        with self.records.read() as s:
            rows = s.execute(query).all()
        found = [RepositoryInfo(name, public, at, n or 0) for name, public, at, n in rows]
        return sorted(found, key=lambda info: info.name.encode())

    def catalog(self, n: int | None = None, last: str | None = None) -> Page:
        with self.records.read() as s:
            names = s.scalars(sa.select(t.RepositoryRecord.name)).all()
        return paginate(names, n, last)

    def delete_repository(self, name: str) -> None:
        """Forget the repository, its tags, manifests and links (bytes go at the next gc)."""

        def work(s: Session) -> list[str]:
            repo_id = self.records.repo_id(s, name)
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

        for upload_id in self.records.write(work):
            self.uploads.forget(upload_id)
            with suppress(StorageError):
                self.driver.delete_upload(upload_id)

    # -- tags --------------------------------------------------------------------------------
    def tags(self, name: str) -> list[str]:
        return self.tag_page(name).items

    def tag_page(self, name: str, n: int | None = None, last: str | None = None) -> Page:
        with self.records.read() as s:
            repo_id = self.records.repo_id(s, name)
            names = s.scalars(
                sa.select(t.TagRecord.name).where(t.TagRecord.repository_id == repo_id)
            ).all()
        return paginate(names, n, last)

    def resolve(self, name: str, reference: str) -> str:
        """The digest a tag (or digest) names in the repository; ManifestUnknown if none."""
        return self.manifest(name, reference).digest

    def delete_tag(self, name: str, tag: str) -> None:
        def work(s: Session) -> None:
            repo_id = self.records.repo_id(s, name)
            gone = s.execute(
                sa.delete(t.TagRecord).where(
                    t.TagRecord.repository_id == repo_id, t.TagRecord.name == tag
                )
            )
            if gone.rowcount == 0:  # type: ignore[attr-defined]
                raise ManifestUnknown("manifest tag unknown", {"tag": tag})

        self.records.write(work)

    # -- manifests -------------------------------------------------------------------------
    def manifest(self, name: str, reference: str) -> StoredManifest:
        ref = parse_reference(reference, reading=True)
        m, r = t.ManifestRecord, t.RepositoryRecord
        query = (
            sa.select(r.id, m.digest, m.media_type, m.size)
            .select_from(r)
            .outerjoin(m, m.repository_id == r.id)
            .where(r.name == name)
        )
        if isinstance(ref, Digest):
            query = query.where(m.digest == str(ref))
        else:
            tags = t.TagRecord
            query = query.join(
                tags, sa.and_(tags.repository_id == r.id, tags.digest == m.digest)
            ).where(tags.name == ref)
        with self.records.conn() as c:
            row = c.execute(query.limit(1)).first()
            if row is None and c.scalar(sa.select(r.id).where(r.name == name)) is None:
                raise NameUnknown("repository name not known to registry", {"name": name})
        if row is None:
            raise ManifestUnknown("manifest unknown", {"reference": reference})
        return StoredManifest(name, row.digest, row.media_type, row.size)

    def manifest_bytes(self, manifest: StoredManifest) -> bytes:
        try:
            return self.driver.get(manifest.digest)
        except BlobNotFound as exc:
            raise ManifestUnknown("manifest content missing", {"digest": manifest.digest}) from exc
        except StorageError as exc:
            raise RegistryUnavailable(f"storage error: {exc}") from exc

    def put_manifest(
        self,
        name: str,
        reference: str,
        data: bytes,
        content_type: str | None,
        actor: str = "",
    ) -> PushResult:
        """Validate and store a manifest under a tag or its digest; publish `ImagePushed`."""
        check_name(name)
        if len(data) > self.max_manifest_bytes:
            raise ManifestTooLarge("manifest too large", {"limit": self.max_manifest_bytes})
        ref = parse_reference(reference)
        manifest = parse_manifest(data, content_type)
        digest = Digest.of(data, ref.algorithm if isinstance(ref, Digest) else "sha256")
        if isinstance(ref, Digest) and ref != digest:
            raise DigestInvalid(
                "manifest digest did not match", {"expected": str(ref), "actual": str(digest)}
            )
        tag = ref if isinstance(ref, str) else None
        now = self.clock.now()

        def work(s: Session) -> None:
            repo_id = self.records.repo_id(s, name, create=True)
            self._check_references(s, repo_id, manifest.blobs, manifest.children)
            self.records.upsert_blob(s, str(digest), len(data))
            self.records.link(s, repo_id, str(digest))
            existing = s.scalar(
                sa.select(t.ManifestRecord.id).where(
                    t.ManifestRecord.repository_id == repo_id,
                    t.ManifestRecord.digest == str(digest),
                )
            )
            if existing is None:
                record = t.ManifestRecord(
                    repository_id=repo_id,
                    digest=str(digest),
                    media_type=manifest.media_type,
                    size=len(data),
                    subject=manifest.subject.digest if manifest.subject else None,
                    artifact_type=manifest.referrer_artifact_type,
                    annotations=dict(manifest.annotations) or None,
                    pushed_by=actor,
                    created_at=now,
                )
                s.add(record)
                s.flush()
                refs = {d: "blob" for d in manifest.blobs}
                refs.update({d: "manifest" for d in manifest.children})
                s.add_all(
                    t.ManifestReference(manifest_id=record.id, digest=d, kind=k)
                    for d, k in refs.items()
                )
            if tag is not None:
                self._set_tag(s, repo_id, tag, str(digest))
            s.add(
                t.PushRecord(
                    repository=name,
                    tag=tag,
                    digest=str(digest),
                    media_type=manifest.media_type,
                    actor=actor,
                    at=now,
                )
            )

        # Bytes and rows under the guard, as an upload commits: the bytes may be an old,
        # unreferenced blob the collector is about to sweep (a re-push after a delete).
        with self.blob_guard.shared():
            storage_call(lambda: self.driver.put(str(digest), data))
            self.records.write(work)
        self.bus.publish(ImagePushed(name, tag, str(digest), manifest.media_type, actor, now))
        subject = manifest.subject.digest if manifest.subject else None
        return PushResult(name, str(digest), manifest.media_type, len(data), tag, subject)

    def _check_references(
        self, s: Session, repo_id: int, blobs: Sequence[str], children: Sequence[str]
    ) -> None:
        missing: list[str] = []
        if blobs:
            linked = sa.select(t.BlobLink.digest).where(
                t.BlobLink.repository_id == repo_id, t.BlobLink.digest.in_(blobs)
            )
            # A write first: it takes the write lock and marks the blobs fresh for the gc.
            touched = s.execute(
                sa.update(t.BlobRecord)
                .where(t.BlobRecord.digest.in_(linked))
                .values(touched_at=self.clock.now())
            )
            if touched.rowcount != len(blobs):  # type: ignore[attr-defined]
                present = set(
                    s.scalars(sa.select(t.BlobRecord.digest).where(t.BlobRecord.digest.in_(linked)))
                )
                missing += [d for d in blobs if d not in present]
        if children:
            present = set(
                s.scalars(
                    sa.select(t.ManifestRecord.digest).where(
                        t.ManifestRecord.repository_id == repo_id,
                        t.ManifestRecord.digest.in_(children),
                    )
                )
            )
            missing += [d for d in children if d not in present]
        if missing:
            raise ManifestBlobUnknown(
                "manifest references a manifest or blob unknown to registry",
                [{"digest": d} for d in missing],
            )

    def _set_tag(self, s: Session, repo_id: int, tag: str, digest: str) -> None:
        moved = s.execute(
            sa.update(t.TagRecord)
            .where(t.TagRecord.repository_id == repo_id, t.TagRecord.name == tag)
            .values(digest=digest, updated_at=self.clock.now())
        )
        if moved.rowcount == 0:  # type: ignore[attr-defined]
            s.add(
                t.TagRecord(
                    repository_id=repo_id, name=tag, digest=digest, updated_at=self.clock.now()
                )
            )
            s.flush()

    def delete_manifest(self, name: str, digest: str) -> None:
        """Delete a manifest by digest, and the tags that point to it."""
        parsed = str(parse_digest(digest))

        def work(s: Session) -> None:
            repo_id = self.records.repo_id(s, name)
            manifest_id = s.scalar(
                sa.select(t.ManifestRecord.id).where(
                    t.ManifestRecord.repository_id == repo_id, t.ManifestRecord.digest == parsed
                )
            )
            if manifest_id is None:
                raise ManifestUnknown("manifest unknown", {"digest": parsed})
            s.execute(
                sa.delete(t.ManifestReference).where(t.ManifestReference.manifest_id == manifest_id)
            )
            s.execute(sa.delete(t.ManifestRecord).where(t.ManifestRecord.id == manifest_id))
            s.execute(
                sa.delete(t.TagRecord).where(
                    t.TagRecord.repository_id == repo_id, t.TagRecord.digest == parsed
                )
            )
            s.execute(
                sa.delete(t.BlobLink).where(
                    t.BlobLink.repository_id == repo_id, t.BlobLink.digest == parsed
                )
            )

        self.records.write(work)

    def delete_reference(self, name: str, reference: str) -> None:
        """DELETE /v2/<name>/manifests/<reference>: a tag deletes only the tag."""
        ref = parse_reference(reference, reading=True)
        if isinstance(ref, Digest):
            self.delete_manifest(name, str(ref))
        else:
            self.delete_tag(name, ref)

    def images(self, name: str) -> list[ImageInfo]:
        """The repository's manifests with their tags, newest first."""
        with self.records.read() as s:
            repo_id = self.records.repo_id(s, name)
            rows = s.scalars(
                sa.select(t.ManifestRecord).where(t.ManifestRecord.repository_id == repo_id)
            ).all()
            tags = s.execute(
                sa.select(t.TagRecord.digest, t.TagRecord.name).where(
                    t.TagRecord.repository_id == repo_id
                )
            ).all()
        by_digest: dict[str, list[str]] = {}
        for digest, tag in tags:
            by_digest.setdefault(digest, []).append(tag)
        found = [
            ImageInfo(
                r.digest,
                r.media_type,
                r.size,
                tuple(sorted(by_digest.get(r.digest, []))),
                r.artifact_type,
                r.subject,
                r.created_at,
                r.pushed_by,
            )
            for r in rows
        ]
        return sorted(found, key=lambda i: (i.pushed_at, i.digest), reverse=True)

    def referrers(
        self, name: str, digest: str, artifact_type: str | None = None
    ) -> list[Descriptor]:
        """Descriptors of the manifests in `name` whose subject is `digest` (any repository
        state: an unknown repository or subject has none)."""
        subject = str(parse_digest(digest))
        with self.records.read() as s:
            query = (
                sa.select(t.ManifestRecord)
                .join(t.RepositoryRecord, t.RepositoryRecord.id == t.ManifestRecord.repository_id)
                .where(t.RepositoryRecord.name == name, t.ManifestRecord.subject == subject)
            )
            if artifact_type:
                query = query.where(t.ManifestRecord.artifact_type == artifact_type)
            rows = s.scalars(query).all()
        found = [
            Descriptor(
                r.media_type,
                r.digest,
                r.size,
                artifact_type=r.artifact_type,
                annotations=r.annotations or {},
            )
            for r in rows
        ]
        return sorted(found, key=lambda d: d.digest)

    # -- blobs -----------------------------------------------------------------------------
    def blob(self, name: str, digest: str) -> BlobInfo:
        """A blob the repository may serve; BlobUnknown otherwise."""
        parsed = str(parse_digest(digest))
        with self.records.conn() as c:
            row = c.execute(
                sa.select(t.BlobRecord.size, t.BlobRecord.touched_at)
                .join(t.BlobLink, t.BlobLink.digest == t.BlobRecord.digest)
                .join(t.RepositoryRecord, t.RepositoryRecord.id == t.BlobLink.repository_id)
                .where(t.RepositoryRecord.name == name, t.BlobRecord.digest == parsed)
            ).first()
        if row is None:
            raise BlobUnknown("blob unknown to registry", {"digest": parsed})
        return BlobInfo(parsed, row[0], row[1])

    def delete_blob(self, name: str, digest: str) -> None:
        """Unlink the blob from the repository (its bytes go at the next gc if unused)."""
        parsed = str(parse_digest(digest))

        def work(s: Session) -> None:
            repo_id = self.records.repo_id(s, name)
            gone = s.execute(
                sa.delete(t.BlobLink).where(
                    t.BlobLink.repository_id == repo_id, t.BlobLink.digest == parsed
                )
            )
            if gone.rowcount == 0:  # type: ignore[attr-defined]
                raise BlobUnknown("blob unknown to registry", {"digest": parsed})

        self.records.write(work)

    def mount_blob(self, name: str, digest: str, source: str) -> BlobInfo | None:
        """Link a blob of `source` into `name`; None when `source` does not have it.

        The check and the link are one transaction, under the blob guard: the blob is
        touched only if its row still exists and `source` still links it, so a sweep either
        ran before (no row: None, the client uploads) or will see it fresh and keep it.
        """
        check_name(name)
        parsed = str(parse_digest(digest))
        linked_in_source = (
            sa.select(t.BlobLink.digest)
            .join(t.RepositoryRecord, t.RepositoryRecord.id == t.BlobLink.repository_id)
            .where(t.RepositoryRecord.name == source, t.BlobLink.digest == parsed)
            .exists()
        )

        def work(s: Session) -> BlobInfo | None:
            now = self.clock.now()
            touched = s.execute(
                sa.update(t.BlobRecord)
                .where(t.BlobRecord.digest == parsed, linked_in_source)
                .values(touched_at=now)
            )
            if touched.rowcount == 0:  # type: ignore[attr-defined]
                return None
            size = s.scalar(sa.select(t.BlobRecord.size).where(t.BlobRecord.digest == parsed))
            assert size is not None
            self.records.link(s, self.records.repo_id(s, name, create=True), parsed)
            return BlobInfo(parsed, size, now)

        with self.blob_guard.shared():
            return self.records.write(work)

    def record_blob(self, name: str, info: BlobInfo, upload_id: str | None = None) -> None:
        """A blob was committed by an upload to `name`: remember it, end the session."""

        def work(s: Session) -> None:
            repo_id = self.records.repo_id(s, name, create=True)
            self.records.upsert_blob(s, info.digest, info.size)
            self.records.link(s, repo_id, info.digest)
            if upload_id is not None:
                s.execute(sa.delete(t.UploadRecord).where(t.UploadRecord.id == upload_id))

        self.records.write(work)

    # -- events and maintenance ------------------------------------------------------------
    def push_events(self, repository: str | None = None, limit: int = 100) -> list[PushEvent]:
        """Manifest pushes, newest first."""
        query = sa.select(t.PushRecord).order_by(t.PushRecord.id.desc()).limit(limit)
        if repository is not None:
            query = query.where(t.PushRecord.repository == repository)
        with self.records.read() as s:
            rows = s.scalars(query).all()
        return [
            PushEvent(r.id, r.repository, r.tag, r.digest, r.media_type, r.actor, r.at)
            for r in rows
        ]

    def pushes_after(self, position: int, limit: int = 100) -> list[PushEvent]:
        """Manifest pushes with an id above `position`, oldest first: the durable log the
        control room's auto-deploy follows with a cursor of its own."""
        query = (
            sa.select(t.PushRecord)
            .where(t.PushRecord.id > position)
            .order_by(t.PushRecord.id)
            .limit(limit)
        )
        with self.records.read() as s:
            rows = s.scalars(query).all()
        return [
            PushEvent(r.id, r.repository, r.tag, r.digest, r.media_type, r.actor, r.at)
            for r in rows
        ]

    def gc(
        self, dry_run: bool = False, grace_seconds: float = 3600.0, *, delete_untagged: bool = False
    ) -> GcReport:
        """Mark and sweep unreferenced blobs, abandoned uploads and temp files (see gc.py)."""
        from baepo.registry.gc import collect

        return collect(
            self, dry_run=dry_run, grace_seconds=grace_seconds, delete_untagged=delete_untagged
        )
