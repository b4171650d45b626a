"""`/api/v1/registry`: repositories, tags, images, deletes, public flags, push events and gc.

The OCI API under `/v2` is for registry clients; this is for people and the CLI. Every
database read runs in a worker thread (`run_in_threadpool`), never on the event loop.
"""

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from baepo.api.errors import ApiError
from baepo.api.security import Identity, require_admin, require_unlimited
from baepo.auth import repository
from baepo.auth.rights import allowed
from baepo.registry import DEFAULT_GRACE_SECONDS, Descriptor, Registry, parse_manifest


class RepositoryOut(BaseModel):
    name: str
    public: bool
    tags: int
    created_at: datetime
    immutable_tags: bool = Field(description="pushed tags may not be moved (but exceptions)")


class TagOut(BaseModel):
    tag: str
    digest: str
    media_type: str
    size: int
    pushed_at: datetime
    pushed_by: str


class ImageOut(BaseModel):
    digest: str
    media_type: str
    artifact_type: str | None
    subject: str | None = Field(description="the digest of the image this artifact refers to")
    tags: list[str]
    size: int = Field(
        description="bytes of its config and layers as pushed (an index: its largest image's)"
    )
    pushed_at: datetime
    pushed_by: str


class DescriptorOut(BaseModel):
    digest: str
    media_type: str
    size: int
    artifact_type: str | None = None
    annotations: dict[str, str] = Field(default_factory=dict)


class ManifestOut(BaseModel):
    """A manifest or index, and what it is made of."""

    repository: str
    digest: str
    media_type: str
    artifact_type: str | None
    size: int = Field(description="bytes of the manifest document itself")
    tags: list[str]
    pushed_at: datetime | None
    pushed_by: str | None
    config: DescriptorOut | None
    layers: list[DescriptorOut]
    manifests: list[DescriptorOut] = Field(description="an index's images")
    subject: DescriptorOut | None
    referrers: list[DescriptorOut] = Field(
        description="manifests in the repository whose subject this is (signatures, SBOMs)"
    )
    annotations: dict[str, str]


class PublicIn(BaseModel):
    public: bool


class GcIn(BaseModel):
    dry_run: bool = False
    grace_seconds: float = Field(
        default=DEFAULT_GRACE_SECONDS,
        ge=0,
        le=10 * 365 * 86400,  # ten years: beyond, the cut-off date is before any date there is
        description="blobs and uploads younger than this are kept (pushes in progress)",
    )


class GcOut(BaseModel):
    dry_run: bool
    blobs: list[str]
    blob_bytes: int
    uploads: list[str]
    upload_bytes: int
    temp_files: int
    bytes_freed: int


class PushEventOut(BaseModel):
    repository: str
    tag: str | None
    digest: str
    media_type: str
    actor: str
    at: datetime


def registry_router(registry: Registry, who: Callable[..., Awaitable[Identity]]) -> APIRouter:
    router = APIRouter(prefix="/api/v1/registry", tags=["registry"])
    Me = Annotated[Identity, Depends(who)]

    def may(me: Identity, name: str, action: str, public: bool) -> bool:
        return bool(allowed(me.rights, repository(name, action), public))

    async def check(me: Identity, name: str, action: str) -> None:
        if may(me, name, action, public=False):
            return
        # Only a refused pull needs the repository's public flag (a database read, in a
        # worker thread): most callers never pay for the lookup.
        public = action == "pull" and await run_in_threadpool(registry.is_public, name)
        if public and may(me, name, action, public=True):
            return
        # Indistinguishable from a missing repository for those who may not pull it.
        if action == "pull":
            raise ApiError(404, "NOT_FOUND", f"no repository {name!r}")
        raise ApiError(403, "FORBIDDEN", f"you may not {action} {name!r}")

    @router.get("/repositories", response_model=list[RepositoryOut])
    async def repositories(me: Me) -> list[RepositoryOut]:
        # One query: each repository comes with its public flag and its number of tags.
        found = await run_in_threadpool(registry.repositories)
        return [
            RepositoryOut(
                name=r.name,
                public=r.public,
                tags=r.tag_count,
                created_at=r.created_at,
                immutable_tags=r.mutability.immutable,
            )
            for r in found
            if may(me, r.name, "pull", r.public)
        ]

    @router.get("/repositories/{name:path}/tags", response_model=list[TagOut])
    async def tags(name: str, me: Me) -> list[TagOut]:
        await check(me, name, "pull")
        images = await run_in_threadpool(registry.images, name)
        rows = [
            TagOut(
                tag=tag,
                digest=i.digest,
                media_type=i.media_type,
                size=i.size,
                pushed_at=i.pushed_at,
                pushed_by=i.pushed_by,
            )
            for i in images
            for tag in i.tags
        ]
        return sorted(rows, key=lambda r: r.tag)

    @router.get("/repositories/{name:path}/images", response_model=list[ImageOut])
    async def images(name: str, me: Me) -> list[ImageOut]:
        """Every manifest of the repository (tagged or not), newest first, with its tags."""
        await check(me, name, "pull")
        return await run_in_threadpool(_images, registry, name)

    @router.get("/repositories/{name:path}/manifests/{reference}", response_model=ManifestOut)
    async def manifest(name: str, reference: str, me: Me) -> ManifestOut:
        """A manifest by tag or digest: its config and layers (an index: its images), its
        tags, who pushed it when, and what refers to it."""
        await check(me, name, "pull")
        return await run_in_threadpool(_manifest, registry, name, reference)

    @router.get("/repositories/{name:path}/events", response_model=list[PushEventOut])
    async def events(name: str, me: Me) -> list[PushEventOut]:
        await check(me, name, "pull")
        found = await run_in_threadpool(registry.push_events, name)
        return [
            PushEventOut(
                repository=e.repository,
                tag=e.tag,
                digest=e.digest,
                media_type=e.media_type,
                actor=e.actor,
                at=e.at,
            )
            for e in found
        ]

    @router.delete("/repositories/{name:path}/tags/{tag}", status_code=204)
    async def delete_tag(name: str, tag: str, me: Me) -> None:
        await check(me, name, "delete")
        await run_in_threadpool(registry.delete_tag, name, tag)

    @router.delete("/repositories/{name:path}/manifests/{digest}", status_code=204)
    async def delete_manifest(name: str, digest: str, me: Me) -> None:
        await check(me, name, "delete")
        await run_in_threadpool(registry.delete_manifest, name, digest)

    @router.put("/repositories/{name:path}/public", status_code=204)
    async def set_public(name: str, body: PublicIn, me: Me) -> None:
        """Who may pull it anonymously: its owner's decision, never a limited token's."""
        require_unlimited(me)
        await check(me, name, "push")
        await run_in_threadpool(registry.set_public, name, body.public)

    @router.delete("/repositories/{name:path}", status_code=204)
    async def delete_repository(name: str, me: Me) -> None:
        await check(me, name, "delete")
        await run_in_threadpool(registry.delete_repository, name)

    @router.post("/gc", response_model=GcOut)
    async def gc(body: GcIn, me: Me) -> GcOut:
        """Sweep blobs no manifest references, abandoned uploads and stray temp files."""
        require_admin(me)
        report = await run_in_threadpool(
            lambda: registry.gc(dry_run=body.dry_run, grace_seconds=body.grace_seconds)
        )
        return GcOut(
            dry_run=report.dry_run,
            blobs=report.blobs,
            blob_bytes=report.blob_bytes,
            uploads=report.uploads,
            upload_bytes=report.upload_bytes,
            temp_files=report.temp_files,
            bytes_freed=report.bytes_freed,
        )

    return router


def _images(registry: Registry, name: str) -> list[ImageOut]:
    sizes = registry.image_sizes(name)
    return [
        ImageOut(
            digest=i.digest,
            media_type=i.media_type,
            artifact_type=i.artifact_type,
            subject=i.subject,
            tags=list(i.tags),
            size=sizes.get(i.digest, 0),
            pushed_at=i.pushed_at,
            pushed_by=i.pushed_by,
        )
        for i in registry.images(name)
    ]


def _manifest(registry: Registry, name: str, reference: str) -> ManifestOut:
    stored = registry.manifest(name, reference)
    document = parse_manifest(registry.manifest_bytes(stored), stored.media_type)
    image = next((i for i in registry.images(name) if i.digest == stored.digest), None)
    return ManifestOut(
        repository=name,
        digest=stored.digest,
        media_type=stored.media_type,
        artifact_type=document.artifact_type,
        size=stored.size,
        tags=list(image.tags) if image else [],
        pushed_at=image.pushed_at if image else None,
        pushed_by=image.pushed_by if image else None,
        config=_descriptor(document.config) if document.config else None,
        layers=[_descriptor(d) for d in document.layers],
        manifests=[_descriptor(d) for d in document.manifests],
        subject=_descriptor(document.subject) if document.subject else None,
        referrers=[_descriptor(d) for d in registry.referrers(name, stored.digest)],
        annotations=dict(document.annotations),
    )


def _descriptor(d: Descriptor) -> DescriptorOut:
    return DescriptorOut(
        digest=d.digest,
        media_type=d.media_type,
        size=d.size,
        artifact_type=d.artifact_type,
        annotations=dict(d.annotations),
    )
