"""`ReferrerIndex`: the manifests whose `subject` is a given digest (the OCI 1.1 referrers API).

A manifest's subject and the artifact type the API reports are kept on its row when it is
pushed (manifest_store.py), so listing referrers is one query and reads no manifest bytes.
"""

from __future__ import annotations

import sqlalchemy as sa

from baepo.registry import tables as t
from baepo.registry.context import RegistryContext
from baepo.registry.manifests import Descriptor
from baepo.registry.references import parse_digest


class ReferrerIndex:
    def __init__(self, ctx: RegistryContext) -> None:
        self._ctx = ctx

    def find(self, name: str, digest: str, artifact_type: str | None = None) -> list[Descriptor]:
        """Descriptors of the manifests in `name` whose subject is `digest`, by digest (any
        repository state: an unknown repository or subject has none)."""
        subject = str(parse_digest(digest))
        with self._ctx.records.read() as s:
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
