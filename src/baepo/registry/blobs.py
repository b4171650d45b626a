"""`BlobStore`: blobs as a repository sees them, through its links (distribution's linked
blob store).

A blob's bytes are stored once, by digest, in the StorageDriver; a `registry_blobs` row says
they were committed, and a `registry_blob_links` row makes them servable from a repository.
Every change that can make a blob live again (an upload's commit, a mount) holds the blob
guard shared from its check or its bytes to its rows, so the collector's sweep, which holds
it exclusively, never removes bytes a push is turning into rows.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from baepo.registry import tables as t
from baepo.registry.context import RegistryContext
from baepo.registry.errors import BlobUnknown, BlobUploadUnknown, RegistryUnavailable
from baepo.registry.references import Digest, check_name, parse_digest
from baepo.storage import BlobInfo, BlobNotFound, BlobReader, StorageError, UploadNotFound
from baepo.store import affected


class BlobStore:
    def __init__(self, ctx: RegistryContext) -> None:
        self._ctx = ctx

    def stat(self, name: str, digest: str) -> BlobInfo:
        """A blob the repository may serve; BlobUnknown otherwise."""
        parsed = str(parse_digest(digest))
        with self._ctx.records.conn() as c:
            row = c.execute(
                sa.select(t.BlobRecord.size, t.BlobRecord.touched_at)
                .join(t.BlobLink, t.BlobLink.digest == t.BlobRecord.digest)
                .join(t.RepositoryRecord, t.RepositoryRecord.id == t.BlobLink.repository_id)
                .where(t.RepositoryRecord.name == name, t.BlobRecord.digest == parsed)
            ).first()
        if row is None:
            raise BlobUnknown("blob unknown to registry", {"digest": parsed})
        return BlobInfo(parsed, row[0], row[1])

    def open(self, digest: str, start: int = 0) -> BlobReader:
        """The blob's bytes from `start` (a reader the caller closes)."""
        try:
            return self._ctx.driver.open(digest, start)
        except BlobNotFound as exc:
            raise BlobUnknown("blob unknown to registry", {"digest": digest}) from exc
        except StorageError as exc:
            raise RegistryUnavailable(f"storage error: {exc}") from exc

    def url(self, digest: str) -> str | None:
        """The driver's redirect URL for the blob, if it gives one."""
        try:
            return self._ctx.driver.redirect_url(digest)
        except StorageError as exc:
            raise RegistryUnavailable(f"storage error: {exc}") from exc

    def unlink(self, name: str, digest: str) -> None:
        """Unlink the blob from the repository (its bytes go at the next gc if unused)."""
        parsed = str(parse_digest(digest))
        records = self._ctx.records

        def work(s: Session) -> None:
            repo_id = records.repo_id(s, name)
            gone = s.execute(
                sa.delete(t.BlobLink).where(
                    t.BlobLink.repository_id == repo_id, t.BlobLink.digest == parsed
                )
            )
            if affected(gone) == 0:
                raise BlobUnknown("blob unknown to registry", {"digest": parsed})

        records.write(work)

    def mount(self, name: str, digest: str, source: str) -> BlobInfo | None:
        """Link a blob of `source` into `name`; None when `source` does not have it.

        The check and the link are one transaction, under the blob guard: the blob is
        touched only if its row still exists and `source` still links it, so a sweep either
        ran before (no row: None, the client uploads) or will see it fresh and keep it.
        """
        check_name(name)
        parsed = str(parse_digest(digest))
        ctx = self._ctx
        linked_in_source = (
            sa.select(t.BlobLink.digest)
            .join(t.RepositoryRecord, t.RepositoryRecord.id == t.BlobLink.repository_id)
            .where(t.RepositoryRecord.name == source, t.BlobLink.digest == parsed)
            .exists()
        )

        def work(s: Session) -> BlobInfo | None:
            now = ctx.clock.now()
            touched = s.execute(
                sa.update(t.BlobRecord)
                .where(t.BlobRecord.digest == parsed, linked_in_source)
                .values(touched_at=now)
            )
            if affected(touched) == 0:
                return None
            size = s.scalar(sa.select(t.BlobRecord.size).where(t.BlobRecord.digest == parsed))
            assert size is not None
            ctx.records.link(s, ctx.records.repo_id(s, name, create=True), parsed)
            return BlobInfo(parsed, size, now)

        with ctx.guard.shared(parsed):
            return ctx.records.write(work)

    def commit(self, repository: str, upload_id: str, digest: Digest) -> BlobInfo:
        """Make a verified upload the blob `digest` of `repository` and end its session row."""
        ctx = self._ctx
        with ctx.guard.shared(str(digest)):
            try:
                info = ctx.driver.commit_upload(upload_id, str(digest))
            except UploadNotFound as exc:
                raise BlobUploadUnknown("blob upload unknown to registry") from exc
            except StorageError as exc:
                raise RegistryUnavailable(f"storage error: {exc}") from exc
            self.record(repository, info, upload_id)
        return info

    def record(self, name: str, info: BlobInfo, upload_id: str | None = None) -> None:
        """A blob was committed by an upload to `name`: remember it, end the session."""
        records = self._ctx.records

        def work(s: Session) -> None:
            repo_id = records.repo_id(s, name, create=True)
            records.upsert_blob(s, info.digest, info.size)
            records.link(s, repo_id, info.digest)
            if upload_id is not None:
                s.execute(sa.delete(t.UploadRecord).where(t.UploadRecord.id == upload_id))

        records.write(work)
