"""The registry's hot rows (repositories, blobs, links, a manifest push's rows), written with
statements built once.

A manifest push is the registry's hottest write: 32 clients pushing small manifests spent
most of their time building SQLAlchemy statements and running the ORM's unit of work, not in
SQLite. Here every statement is built at import with bound parameters and run on the session's
connection, in the caller's transaction. What the rows mean is the concerns' business
(`manifest_store.py`, `blobs.py`, through `records.py`); this module only writes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from baepo.registry import tables as t
from baepo.registry.mutability import TagMutability
from baepo.store import affected

_REPOSITORY = sa.select(t.RepositoryRecord.id).where(
    t.RepositoryRecord.name == sa.bindparam("name")
)
_NEW_REPOSITORY = (
    sa.insert(t.RepositoryRecord)
    .values(name=sa.bindparam("name"), public=False, created_at=sa.bindparam("now"))
    .returning(t.RepositoryRecord.id)
)
_LINKED = sa.select(t.BlobLink.digest).where(
    t.BlobLink.repository_id == sa.bindparam("repo"),
    t.BlobLink.digest.in_(sa.bindparam("digests", expanding=True)),
)
# A write first: it takes the write lock and marks the blob fresh for the collector, in the
# transaction that checks it is linked to the repository, with the size the manifest gives.
# One digest per execution: a statement with an expanding IN is compiled again at every call.
_TOUCH_LINKED = (
    sa.update(t.BlobRecord)
    .where(
        t.BlobRecord.digest == sa.bindparam("one_digest"),
        t.BlobRecord.size == sa.bindparam("one_size"),
        sa.exists().where(
            t.BlobLink.repository_id == sa.bindparam("repo"),
            t.BlobLink.digest == sa.bindparam("one_digest"),
        ),
    )
    .values(touched_at=sa.bindparam("now"))
)
_LINKED_SIZES = sa.select(t.BlobRecord.digest, t.BlobRecord.size).where(
    t.BlobRecord.digest.in_(_LINKED)
)
_CHILD_SIZES = sa.select(t.ManifestRecord.digest, t.ManifestRecord.size).where(
    t.ManifestRecord.repository_id == sa.bindparam("repo"),
    t.ManifestRecord.digest.in_(sa.bindparam("digests", expanding=True)),
)
_TOUCH_BLOB = (
    sa.update(t.BlobRecord)
    .where(t.BlobRecord.digest == sa.bindparam("the_digest"))
    .values(touched_at=sa.bindparam("now"))
)
_NEW_BLOB = sa.insert(t.BlobRecord).values(
    digest=sa.bindparam("the_digest"),
    size=sa.bindparam("the_size"),
    created_at=sa.bindparam("now"),
    touched_at=sa.bindparam("now"),
)
_LINK = sa.select(t.BlobLink.digest).where(
    t.BlobLink.repository_id == sa.bindparam("repo"),
    t.BlobLink.digest == sa.bindparam("the_digest"),
)
_NEW_LINK = sa.insert(t.BlobLink).values(
    repository_id=sa.bindparam("repo"), digest=sa.bindparam("the_digest")
)
_MANIFEST = sa.select(t.ManifestRecord.id).where(
    t.ManifestRecord.repository_id == sa.bindparam("repo"),
    t.ManifestRecord.digest == sa.bindparam("the_digest"),
)
_NEW_MANIFEST = sa.insert(t.ManifestRecord).returning(t.ManifestRecord.id)
_NEW_REFERENCES = sa.insert(t.ManifestReference)
_MOVE_TAG = (
    sa.update(t.TagRecord)
    .where(
        t.TagRecord.repository_id == sa.bindparam("repo"),
        t.TagRecord.name == sa.bindparam("tag"),
    )
    .values(digest=sa.bindparam("the_digest"), updated_at=sa.bindparam("now"))
)
_NEW_TAG = sa.insert(t.TagRecord).values(
    repository_id=sa.bindparam("repo"),
    name=sa.bindparam("tag"),
    digest=sa.bindparam("the_digest"),
    updated_at=sa.bindparam("now"),
)
_NEW_PUSH = sa.insert(t.PushRecord)
_MUTABILITY = sa.select(t.RepositoryRecord.immutable_tags, t.RepositoryRecord.tag_exceptions).where(
    t.RepositoryRecord.id == sa.bindparam("repo")
)
_TAG_DIGEST = sa.select(t.TagRecord.digest).where(
    t.TagRecord.repository_id == sa.bindparam("repo"), t.TagRecord.name == sa.bindparam("tag")
)


def repository_id(conn: sa.Connection, name: str) -> int | None:
    found = conn.execute(_REPOSITORY, {"name": name}).scalar()
    return None if found is None else int(found)


def repository(conn: sa.Connection, name: str, now: datetime) -> int:
    """The repository's id, made if it is new."""
    found = repository_id(conn, name)
    if found is not None:
        return found
    return int(conn.execute(_NEW_REPOSITORY, {"name": name, "now": now}).scalar_one())


def touch_blobs(
    conn: sa.Connection, repo: int, sizes: Mapping[str, int], now: datetime
) -> dict[str, int] | None:
    """Mark the repository's blobs fresh if each is there with its size: None when all are,
    else the ones there, with their real sizes."""
    touched = 0
    for digest, size in sizes.items():
        params = {"repo": repo, "one_digest": digest, "one_size": size, "now": now}
        touched += affected(conn.execute(_TOUCH_LINKED, params))
    if touched == len(sizes):
        return None
    rows = conn.execute(_LINKED_SIZES, {"repo": repo, "digests": list(sizes)})
    return {digest: size for digest, size in rows}


def child_sizes(conn: sa.Connection, repo: int, digests: list[str]) -> dict[str, int]:
    rows = conn.execute(_CHILD_SIZES, {"repo": repo, "digests": digests})
    return {digest: size for digest, size in rows}


def blob(conn: sa.Connection, digest: str, size: int, now: datetime) -> None:
    """The blob's row, made or marked fresh for the collector."""
    params = {"the_digest": digest, "the_size": size, "now": now}
    if affected(conn.execute(_TOUCH_BLOB, params)) == 0:
        conn.execute(_NEW_BLOB, params)


def link(conn: sa.Connection, repo: int, digest: str) -> None:
    """The blob belongs to the repository (once)."""
    params = {"repo": repo, "the_digest": digest}
    if conn.execute(_LINK, params).first() is None:
        conn.execute(_NEW_LINK, params)


def add_manifest(
    conn: sa.Connection,
    repo: int,
    digest: str,
    row: Mapping[str, Any],
    references: Mapping[str, str],
) -> None:
    """The manifest's row and its references (digest → "blob" or "manifest"), unless the
    repository has it already."""
    if conn.execute(_MANIFEST, {"repo": repo, "the_digest": digest}).first() is not None:
        return
    manifest_id = conn.execute(
        _NEW_MANIFEST, {**row, "repository_id": repo, "digest": digest}
    ).scalar_one()
    if references:
        conn.execute(
            _NEW_REFERENCES,
            [{"manifest_id": manifest_id, "digest": d, "kind": k} for d, k in references.items()],
        )


def mutability(conn: sa.Connection, repo: int) -> TagMutability:
    immutable, exceptions = conn.execute(_MUTABILITY, {"repo": repo}).one()
    return TagMutability(bool(immutable), tuple(exceptions.split()))


def tag_digest(conn: sa.Connection, repo: int, tag: str) -> str | None:
    found = conn.execute(_TAG_DIGEST, {"repo": repo, "tag": tag}).scalar()
    return None if found is None else str(found)


def point_tag(conn: sa.Connection, repo: int, tag: str, digest: str, now: datetime) -> None:
    params = {"repo": repo, "tag": tag, "the_digest": digest, "now": now}
    if affected(conn.execute(_MOVE_TAG, params)) == 0:
        conn.execute(_NEW_TAG, params)


def log_push(conn: sa.Connection, row: Mapping[str, Any]) -> None:
    conn.execute(_NEW_PUSH, dict(row))
