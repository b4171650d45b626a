"""`ManifestStore`: manifests stored, looked up, listed and deleted (distribution's manifest
store); their validation is the pure `manifests.parse_manifest`.

Consistency rules a push keeps:
- Bytes first, rows second: a manifest's bytes are stored (durably) before its row exists.
  A crash in between leaves bytes without a row, which the garbage collector removes after
  its grace period.
- A push touches every blob it references (`touched_at`) in the same transaction that
  checks they exist, so the collector never sweeps a blob a push is relying on.
- The push's row in the push log (pushes.py) is written in that transaction too; the
  `ImagePushed` event is published after it commits.
- A fixed tag of a repository with immutable tags (mutability.py) is not moved: checked in
  that transaction, so two pushes of one tag cannot both win.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from baepo.events import EventBus, ImagePushed
from baepo.registry import rows
from baepo.registry import tables as t
from baepo.registry.context import RegistryContext
from baepo.registry.errors import (
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestTooLarge,
    ManifestUnknown,
    NameUnknown,
    RegistryUnavailable,
)
from baepo.registry.manifests import MAX_MANIFEST_BYTES, Manifest, parse_manifest
from baepo.registry.records import storage_call
from baepo.registry.references import Digest, check_name, parse_digest, parse_reference
from baepo.registry.tags import TagStore
from baepo.storage import BlobNotFound, StorageError


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


class ManifestStore:
    def __init__(
        self,
        ctx: RegistryContext,
        bus: EventBus,
        *,
        max_manifest_bytes: int = MAX_MANIFEST_BYTES,
    ) -> None:
        self._ctx = ctx
        self._bus = bus
        self._tags = TagStore(ctx)
        self.max_manifest_bytes = max_manifest_bytes

    def get(self, name: str, reference: str) -> StoredManifest:
        """The manifest a tag or digest names; NameUnknown or ManifestUnknown if none."""
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
        with self._ctx.records.conn() as c:
            row = c.execute(query.limit(1)).first()
            if row is None and c.scalar(sa.select(r.id).where(r.name == name)) is None:
                raise NameUnknown("repository name not known to registry", {"name": name})
        if row is None:
            raise ManifestUnknown("manifest unknown", {"reference": reference})
        return StoredManifest(name, row.digest, row.media_type, row.size)

    def content(self, manifest: StoredManifest) -> bytes:
        try:
            return self._ctx.driver.get(manifest.digest)
        except BlobNotFound as exc:
            raise ManifestUnknown("manifest content missing", {"digest": manifest.digest}) from exc
        except StorageError as exc:
            raise RegistryUnavailable(f"storage error: {exc}") from exc

    def put(
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
        ctx = self._ctx
        now = ctx.clock.now()

        row = {
            "media_type": manifest.media_type,
            "size": len(data),
            "subject": manifest.subject.digest if manifest.subject else None,
            "artifact_type": manifest.referrer_artifact_type,
            "annotations": dict(manifest.annotations) or None,
            "pushed_by": actor,
            "created_at": now,
        }
        references = {d: "blob" for d in manifest.blobs}
        references.update({d: "manifest" for d in manifest.children})

        def work(s: Session) -> None:
            conn = s.connection()
            repo_id = rows.repository(conn, name, now)
            self._check_references(conn, repo_id, manifest, now)
            rows.blob(conn, str(digest), len(data), now)
            rows.link(conn, repo_id, str(digest))
            rows.add_manifest(conn, repo_id, str(digest), row, references)
            if tag is not None:
                _check_movable(conn, repo_id, name, tag, str(digest))
                rows.point_tag(conn, repo_id, tag, str(digest), now)
            rows.log_push(
                conn,
                {
                    "repository": name,
                    "tag": tag,
                    "digest": str(digest),
                    "media_type": manifest.media_type,
                    "actor": actor,
                    "at": now,
                },
            )

        # Bytes and rows under the guard, as an upload commits: the bytes may be an old,
        # unreferenced blob the collector is about to sweep (a re-push after a delete).
        with ctx.guard.shared(str(digest)):
            storage_call(lambda: ctx.driver.put(str(digest), data))
            ctx.records.write(work)
        self._bus.publish(ImagePushed(name, tag, str(digest), manifest.media_type, actor, now))
        subject = manifest.subject.digest if manifest.subject else None
        return PushResult(name, str(digest), manifest.media_type, len(data), tag, subject)

    def _check_references(
        self, conn: sa.Connection, repo_id: int, manifest: Manifest, now: datetime
    ) -> None:
        """Every blob and child manifest is in the repository, with the size its descriptor
        says (a descriptor that lies about a size would make clients read past a blob)."""
        missing: list[str] = []
        wrong: dict[str, int] = {}  # digest -> the real size
        blobs, children = manifest.blob_sizes, manifest.child_sizes
        if not manifest.sizes_agree:
            raise ManifestInvalid("one digest is described with two different sizes")
        if blobs:
            present = rows.touch_blobs(conn, repo_id, blobs, now)
            if present is not None:
                missing += [d for d in blobs if d not in present]
                wrong |= {
                    d: present[d] for d, size in blobs.items() if present.get(d, size) != size
                }
        if children:
            present = rows.child_sizes(conn, repo_id, list(children))
            missing += [d for d in children if d not in present]
            wrong |= {d: present[d] for d, size in children.items() if present.get(d, size) != size}
        if missing:
            raise ManifestBlobUnknown(
                "manifest references a manifest or blob unknown to registry",
                [{"digest": d} for d in missing],
            )
        if wrong:
            described = blobs | children
            raise ManifestInvalid(
                "a descriptor's size does not match the content it names",
                [{"digest": d, "size": described[d], "actual": real} for d, real in wrong.items()],
            )

    def delete(self, name: str, digest: str) -> None:
        """Delete a manifest by digest, and the tags that point to it."""
        parsed = str(parse_digest(digest))
        records = self._ctx.records

        def work(s: Session) -> None:
            _forget(s, records.repo_id(s, name), parsed)

        records.write(work)

    def untag(self, name: str, tag: str) -> None:
        """Remove a tag, and its manifest with it when that was the manifest's last tag (as
        ECR's BatchDeleteImage does), in one transaction."""
        records = self._ctx.records
        tags = t.TagRecord

        def work(s: Session) -> None:
            repo_id = records.repo_id(s, name)
            where = sa.and_(tags.repository_id == repo_id, tags.name == tag)
            digest = s.scalar(sa.select(tags.digest).where(where))
            if digest is None:
                raise ManifestUnknown("manifest tag unknown", {"tag": tag})
            s.execute(sa.delete(tags).where(where))
            others = sa.select(tags.name).where(
                tags.repository_id == repo_id, tags.digest == digest
            )
            if s.execute(others.limit(1)).first() is None:
                _forget(s, repo_id, digest)

        records.write(work)

    def delete_reference(self, name: str, reference: str) -> None:
        """DELETE /v2/<name>/manifests/<reference>: a tag deletes only the tag."""
        ref = parse_reference(reference, reading=True)
        if isinstance(ref, Digest):
            self.delete(name, str(ref))
        else:
            self._tags.delete(name, ref)

    def images(self, name: str) -> list[ImageInfo]:
        """The repository's manifests with their tags, newest first."""
        records = self._ctx.records
        with records.read() as s:
            repo_id = records.repo_id(s, name)
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

    def index_children(self, name: str) -> set[str]:
        """The digests of the repository's manifests that one of its indexes lists."""
        m, r = t.ManifestRecord, t.ManifestReference
        records = self._ctx.records
        with records.read() as s:
            repo_id = records.repo_id(s, name)
            found = s.scalars(
                sa.select(r.digest)
                .join(m, r.manifest_id == m.id)
                .where(m.repository_id == repo_id, r.kind == "manifest")
            ).all()
        return set(found)

    def image_sizes(self, name: str) -> dict[str, int]:
        """What each of the repository's images takes: the blobs its manifest references
        (config and layers, as pushed: compressed); an index, its largest child's."""
        m, r, b = t.ManifestRecord, t.ManifestReference, t.BlobRecord
        records = self._ctx.records
        with records.read() as s:
            repo_id = records.repo_id(s, name)
            blobs = s.execute(
                sa.select(m.digest, sa.func.sum(b.size))
                .join(r, r.manifest_id == m.id)
                .join(b, b.digest == r.digest)
                .where(m.repository_id == repo_id, r.kind == "blob")
                .group_by(m.digest)
            ).all()
            children = s.execute(
                sa.select(m.digest, r.digest)
                .join(r, r.manifest_id == m.id)
                .where(m.repository_id == repo_id, r.kind == "manifest")
            ).all()
        sizes = {digest: int(total or 0) for digest, total in blobs}
        for index, child in children:
            sizes[index] = max(sizes.get(index, 0), sizes.get(child, 0))
        return sizes


def _forget(s: Session, repo_id: int, digest: str) -> None:
    """Delete the repository's manifest `digest`, its references, tags and blob link."""
    manifest_id = s.scalar(
        sa.select(t.ManifestRecord.id).where(
            t.ManifestRecord.repository_id == repo_id, t.ManifestRecord.digest == digest
        )
    )
    if manifest_id is None:
        raise ManifestUnknown("manifest unknown", {"digest": digest})
    s.execute(sa.delete(t.ManifestReference).where(t.ManifestReference.manifest_id == manifest_id))
    s.execute(sa.delete(t.ManifestRecord).where(t.ManifestRecord.id == manifest_id))
    for table in (t.TagRecord, t.BlobLink):
        s.execute(sa.delete(table).where(table.repository_id == repo_id, table.digest == digest))


def _check_movable(conn: sa.Connection, repo_id: int, name: str, tag: str, digest: str) -> None:
    """A fixed tag (mutability.py) that names another manifest is not moved: TagInvalid."""
    mutability = rows.mutability(conn, repo_id)
    if not mutability.fixed(tag):
        return
    current = rows.tag_digest(conn, repo_id, tag)
    if current is not None and current != digest:
        raise mutability.refusal(name, tag)
