"""Online garbage collection: mark and sweep, while the registry keeps serving.

    1. (only with `delete_untagged`) drop manifests no tag reaches — directly, through an
       index, or as a referrer of a reached manifest — and that are older than the grace
       period. Off by default: a manifest pushed by digest only is kept, as in distribution.
    2. mark: every manifest, and every blob or child manifest a manifest references.
    3. sweep: delete every stored blob that is not marked and was last pushed or referenced
       (`touched_at`; the file's mtime for bytes without a row) before `now - grace`.
    4. remove upload sessions idle for longer than the grace period (never one a request is
       streaming into), and temp files a crash left behind.

Upload sessions also expire on their own (`expire_uploads`, run by the server every hour with
a 24 h default): step 4 alone, so an abandoned push never waits for an admin's gc.
A session's bytes go before its row: freeing space must work on a full disk, where the
database may not be able to write a page.

Why a push in progress is never broken: blobs younger than the grace period are never swept;
a manifest push refreshes `touched_at` of the blobs it references in the same transaction
that checks they exist; and each sweep re-checks, in one conditional DELETE, that the blob is
still unreferenced and old, while holding the blob guard exclusively (upload
commits, manifest pushes and cross-repository mounts hold it shared from their check or
their bytes to their rows), before its bytes are removed. Processes sharing a PostgreSQL
database hold it per digest across them too: a sweep leaves a blob another process is
committing.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from baepo.registry import tables as t
from baepo.registry.context import RegistryContext
from baepo.storage import StorageError
from baepo.store import affected

DEFAULT_GRACE_SECONDS = 3600.0
LONGEST_GRACE_SECONDS = 10 * 365 * 86400.0
"""Longer ago than ten years is "never" (and a cut-off date must stay a date)."""


def _cutoff(now: datetime, seconds: float) -> datetime:
    return now - timedelta(seconds=min(max(0.0, seconds), LONGEST_GRACE_SECONDS))


@dataclass
class GcReport:
    dry_run: bool
    blobs: list[str] = field(default_factory=list)  # digests freed
    blob_bytes: int = 0
    manifests: list[tuple[str, str]] = field(default_factory=list)  # (repository, digest)
    uploads: list[str] = field(default_factory=list)
    upload_bytes: int = 0
    temp_files: int = 0
    temp_bytes: int = 0

    @property
    def bytes_freed(self) -> int:
        return self.blob_bytes + self.upload_bytes + self.temp_bytes

    def as_json(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "blobs": self.blobs,
            "blob_bytes": self.blob_bytes,
            "manifests": [{"repository": r, "digest": d} for r, d in self.manifests],
            "uploads": self.uploads,
            "upload_bytes": self.upload_bytes,
            "temp_files": self.temp_files,
            "temp_bytes": self.temp_bytes,
            "bytes_freed": self.bytes_freed,
        }


def collect(
    ctx: RegistryContext,
    *,
    dry_run: bool = False,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
    delete_untagged: bool = False,
) -> GcReport:
    report = GcReport(dry_run)
    cutoff = _cutoff(ctx.clock.now(), grace_seconds)
    doomed: set[int] = set()
    if delete_untagged:
        doomed = _untagged(ctx, cutoff, report)
        if not dry_run:
            _delete_manifests(ctx, doomed)
    _sweep_blobs(ctx, cutoff, doomed, report)
    _sweep_uploads(ctx, cutoff, report)
    # A leftover temp file is harmless: if removing one fails, the next run tries again.
    with contextlib.suppress(StorageError):
        report.temp_files, report.temp_bytes = ctx.driver.sweep_temp(cutoff, dry_run=dry_run)
    return report


def expire_uploads(ctx: RegistryContext, max_idle_seconds: float) -> GcReport:
    """Remove upload sessions idle for longer than `max_idle_seconds`, files and rows."""
    report = GcReport(dry_run=False)
    _sweep_uploads(ctx, _cutoff(ctx.clock.now(), max_idle_seconds), report)
    return report


def _untagged(ctx: RegistryContext, cutoff: datetime, report: GcReport) -> set[int]:
    with ctx.records.read() as s:
        manifests = s.execute(
            sa.select(
                t.ManifestRecord.id,
                t.ManifestRecord.repository_id,
                t.ManifestRecord.digest,
                t.ManifestRecord.subject,
                t.ManifestRecord.created_at,
            )
        ).all()
        tags = s.execute(sa.select(t.TagRecord.repository_id, t.TagRecord.digest)).all()
        children = s.execute(
            sa.select(t.ManifestReference.manifest_id, t.ManifestReference.digest).where(
                t.ManifestReference.kind == "manifest"
            )
        ).all()
        names = dict(s.execute(sa.select(t.RepositoryRecord.id, t.RepositoryRecord.name)).all())
    by_key = {(m.repository_id, m.digest): m for m in manifests}
    kids: dict[int, list[str]] = {}
    for manifest_id, digest in children:
        kids.setdefault(manifest_id, []).append(digest)
    referrers: dict[tuple[int, str], list[str]] = {}
    for m in manifests:
        if m.subject:
            referrers.setdefault((m.repository_id, m.subject), []).append(m.digest)
    reached: set[tuple[int, str]] = set()
    todo = [(repo, digest) for repo, digest in tags]
    while todo:
        key = todo.pop()
        if key in reached or key not in by_key:
            continue
        reached.add(key)
        repo, _ = key
        todo += [(repo, d) for d in kids.get(by_key[key].id, [])]
        todo += [(repo, d) for d in referrers.get(key, [])]
    doomed: set[int] = set()
    for key, m in by_key.items():
        if key not in reached and m.created_at < cutoff:
            doomed.add(m.id)
            report.manifests.append((names.get(m.repository_id, "?"), m.digest))
    return doomed


def _delete_manifests(ctx: RegistryContext, doomed: set[int]) -> None:
    for manifest_id in doomed:

        def work(s: Session, manifest_id: int = manifest_id) -> None:
            row = s.get(t.ManifestRecord, manifest_id)
            if row is None:
                return
            tagged = s.scalar(
                sa.select(sa.func.count())
                .select_from(t.TagRecord)
                .where(t.TagRecord.repository_id == row.repository_id)
                .where(t.TagRecord.digest == row.digest)
            )
            if tagged:  # tagged since the mark: keep it
                return
            s.execute(
                sa.delete(t.ManifestReference).where(t.ManifestReference.manifest_id == manifest_id)
            )
            s.execute(
                sa.delete(t.BlobLink).where(
                    t.BlobLink.repository_id == row.repository_id, t.BlobLink.digest == row.digest
                )
            )
            s.delete(row)

        ctx.records.write(work)


def _marked(s: Session) -> set[str]:
    marked = set(s.scalars(sa.select(t.ManifestRecord.digest)))
    marked |= set(s.scalars(sa.select(t.ManifestReference.digest)))
    return marked


def _sweep_blobs(
    ctx: RegistryContext, cutoff: datetime, doomed: set[int], report: GcReport
) -> None:
    with ctx.records.read() as s:
        marked = _marked(s)
        if doomed and report.dry_run:  # what the mark would be once they are gone
            marked = set(
                s.scalars(
                    sa.select(t.ManifestRecord.digest).where(t.ManifestRecord.id.not_in(doomed))
                )
            )
            marked |= set(
                s.scalars(
                    sa.select(t.ManifestReference.digest).where(
                        t.ManifestReference.manifest_id.not_in(doomed)
                    )
                )
            )
        rows = {
            digest: (size, touched)
            for digest, size, touched in s.execute(
                sa.select(t.BlobRecord.digest, t.BlobRecord.size, t.BlobRecord.touched_at)
            )
        }
    try:
        stored = list(ctx.driver.blobs())
    except StorageError:
        return
    for info in stored:
        if info.digest in marked:
            continue
        row = rows.get(info.digest)
        last_used = row[1] if row else info.modified
        if last_used >= cutoff:
            continue
        if report.dry_run or _sweep_one(ctx, info.digest, cutoff):
            report.blobs.append(info.digest)
            report.blob_bytes += info.size
    if not report.dry_run:  # rows whose bytes are already gone
        present = {i.digest for i in stored}
        for digest, (_, touched) in rows.items():
            if digest not in present and digest not in marked and touched < cutoff:
                _sweep_one(ctx, digest, cutoff)


def _sweep_one(ctx: RegistryContext, digest: str, cutoff: datetime) -> bool:
    unreferenced = sa.and_(
        ~sa.exists().where(t.ManifestReference.digest == digest),
        ~sa.exists().where(t.ManifestRecord.digest == digest),
    )

    def work(s: Session) -> bool:
        row = s.execute(
            sa.delete(t.BlobRecord).where(
                t.BlobRecord.digest == digest, t.BlobRecord.touched_at < cutoff, unreferenced
            )
        )
        if affected(row):
            s.execute(sa.delete(t.BlobLink).where(t.BlobLink.digest == digest))
            return True
        # No row left to delete: sweep only bytes that have no row at all.
        return s.get(t.BlobRecord, digest) is None and bool(s.scalar(sa.select(unreferenced)))

    with ctx.guard.exclusive(digest) as alone:
        if not alone or not ctx.records.write(work):
            return False
        try:
            ctx.driver.delete(digest)
        except StorageError:
            return False
    return True


def _sweep_uploads(ctx: RegistryContext, cutoff: datetime, report: GcReport) -> None:
    sessions = ctx.sessions
    now = ctx.clock.now()
    with ctx.records.read() as s:
        rows = dict(s.execute(sa.select(t.UploadRecord.id, t.UploadRecord.created_at)).all())
        held = set(  # by a request in another process sharing the database
            s.scalars(sa.select(t.UploadRecord.id).where(t.UploadRecord.held_until > now))
        )
    try:
        stored = list(ctx.driver.uploads())
    except StorageError:
        return
    for info in stored:
        if sessions.is_busy(info.id) or info.id in held or info.modified >= cutoff:
            continue
        created = rows.get(info.id)
        if created is not None and created >= cutoff:
            continue
        report.uploads.append(info.id)
        report.upload_bytes += info.size
        if not report.dry_run:
            sessions.forget(info.id)
            _forget_upload(ctx, info.id)
    if not report.dry_run:
        present = {i.id for i in stored}
        for upload_id, created in rows.items():
            if upload_id not in present and created < cutoff:
                _forget_upload(ctx, upload_id)


def _forget_upload(ctx: RegistryContext, upload_id: str) -> None:
    with contextlib.suppress(StorageError):
        ctx.driver.delete_upload(upload_id)
    ctx.records.write(
        lambda s: s.execute(sa.delete(t.UploadRecord).where(t.UploadRecord.id == upload_id))
    )
