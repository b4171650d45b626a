"""The registry's tables (on `baepo.store.Base`). Bytes live in the StorageDriver; this is
what the bytes mean.

    registry_repositories         name, public flag, tag immutability, lifecycle policy
    registry_blobs                every stored blob (layers, configs, manifests): size and
                                  when it was last pushed or referenced (`touched_at`, for the
                                  garbage collector's grace period)
    registry_repository_blobs     which blobs a repository may serve (upload, mount, manifest)
    registry_manifests            a manifest in a repository: media type, size, subject,
                                  artifact type and annotations (for the referrers API)
    registry_manifest_references  what a manifest points to: blobs (config, layers) and child
                                  manifests (of an index)
    registry_tags                 tag -> manifest digest
    registry_uploads              open upload sessions (the bytes are in the driver), and
                                  which process's request holds one now (uploads.py)
    registry_push_events          every manifest push: who, what, when
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from baepo.store import Base, UtcDateTime

DIGEST = sa.String(160)


class RepositoryRecord(Base):
    __tablename__ = "registry_repositories"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(255), unique=True)
    public: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    immutable_tags: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    """Tag immutability (mutability.py): pushed tags may not move, but the exceptions."""
    tag_exceptions: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    """Space-separated wildcard filters of tags that follow the other rule."""
    lifecycle_policy: Mapped[str | None] = mapped_column(sa.Text, default=None)
    """ECR's JSON lifecycle policy (lifecycle.py) as it was given, checked."""
    lifecycle_evaluated_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    lifecycle_preview: Mapped[str | None] = mapped_column(sa.Text, default=None)
    """The policy the latest ECR lifecycle preview was started with (any process answers it)."""


class BlobRecord(Base):
    __tablename__ = "registry_blobs"

    digest: Mapped[str] = mapped_column(DIGEST, primary_key=True)
    size: Mapped[int] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    touched_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class BlobLink(Base):
    __tablename__ = "registry_repository_blobs"

    repository_id: Mapped[int] = mapped_column(
        sa.ForeignKey("registry_repositories.id", ondelete="CASCADE"), primary_key=True
    )
    digest: Mapped[str] = mapped_column(
        sa.ForeignKey("registry_blobs.digest", ondelete="CASCADE"), primary_key=True, index=True
    )


class ManifestRecord(Base):
    __tablename__ = "registry_manifests"
    __table_args__ = (
        sa.UniqueConstraint("repository_id", "digest"),
        sa.Index("ix_registry_manifests_subject", "repository_id", "subject"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(
        sa.ForeignKey("registry_repositories.id", ondelete="CASCADE")
    )
    digest: Mapped[str] = mapped_column(DIGEST, index=True)
    media_type: Mapped[str] = mapped_column(sa.String(255))
    size: Mapped[int] = mapped_column(sa.BigInteger)
    subject: Mapped[str | None] = mapped_column(DIGEST)
    artifact_type: Mapped[str | None] = mapped_column(sa.String(255))
    annotations: Mapped[dict[str, str] | None] = mapped_column(sa.JSON)
    pushed_by: Mapped[str] = mapped_column(sa.String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ManifestReference(Base):
    __tablename__ = "registry_manifest_references"

    manifest_id: Mapped[int] = mapped_column(
        sa.ForeignKey("registry_manifests.id", ondelete="CASCADE"), primary_key=True
    )
    digest: Mapped[str] = mapped_column(DIGEST, primary_key=True, index=True)
    kind: Mapped[str] = mapped_column(sa.String(16))  # "blob" | "manifest"


class TagRecord(Base):
    __tablename__ = "registry_tags"

    repository_id: Mapped[int] = mapped_column(
        sa.ForeignKey("registry_repositories.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    digest: Mapped[str] = mapped_column(DIGEST, index=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class UploadRecord(Base):
    __tablename__ = "registry_uploads"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    repository: Mapped[str] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    held_by: Mapped[str | None] = mapped_column(sa.String(255), default=None)
    """The request appending to or committing the upload now (uploads.py's `_Hold`)."""
    held_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    """When that hold lapses unless renewed (its process died)."""


class PushRecord(Base):
    __tablename__ = "registry_push_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    repository: Mapped[str] = mapped_column(sa.String(255), index=True)
    tag: Mapped[str | None] = mapped_column(sa.String(128))
    digest: Mapped[str] = mapped_column(DIGEST)
    media_type: Mapped[str] = mapped_column(sa.String(255))
    actor: Mapped[str] = mapped_column(sa.String(255))
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
