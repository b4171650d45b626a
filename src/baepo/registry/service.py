"""`Registry`: the registry as plain Python, for the HTTP edge, the API room and the CLI.

A thin facade: it builds the one `RegistryContext` (context.py) and the concerns over it,
and every method is a one-line delegation to the concern that owns it:

    repositories.py    RepositoryStore    create, public flag, tag mutability, lifecycle
                                          policy, list, catalog, delete
    tags.py            TagStore           list (paged), delete
    manifest_store.py  ManifestStore      get, content, push, delete, images
    referrers.py       ReferrerIndex      manifests whose subject is a digest
    blobs.py           BlobStore          stat, open, unlink, mount, record
    uploads.py         Uploads            blob upload sessions (async, for the HTTP edge)
    pushes.py          PushLog            the durable log of pushes
    gc.py              collect            online mark and sweep

Every synchronous method is short: one database transaction, at most one driver call. The
HTTP edge runs them in a worker thread. SQLAlchemy and storage errors leave as
`RegistryUnavailable` (or the registry error they mean).
"""

from __future__ import annotations

from collections.abc import Callable

from baepo.clock import Clock
from baepo.events import EventBus
from baepo.registry.blobs import BlobStore
from baepo.registry.context import RegistryContext
from baepo.registry.gc import DEFAULT_GRACE_SECONDS, GcReport, collect, expire_uploads
from baepo.registry.lifecycle import parse_policy
from baepo.registry.manifest_store import ImageInfo, ManifestStore, PushResult, StoredManifest
from baepo.registry.manifests import MAX_MANIFEST_BYTES, Descriptor
from baepo.registry.mutability import TagMutability
from baepo.registry.pagination import Page
from baepo.registry.pushes import PushEvent, PushLog
from baepo.registry.referrers import ReferrerIndex
from baepo.registry.repositories import RepositoryInfo, RepositoryStore
from baepo.registry.sessions import release_holds
from baepo.registry.tags import TagStore
from baepo.registry.uploads import Uploads
from baepo.storage import BlobInfo, BlobReader, StorageDriver
from baepo.store import Database


class Registry:
    def __init__(
        self,
        db: Database,
        driver: StorageDriver,
        bus: EventBus,
        clock: Clock,
        *,
        max_manifest_bytes: int = MAX_MANIFEST_BYTES,
        process: str | None = None,
    ) -> None:
        self.context = RegistryContext.create(db, driver, clock, process)
        self._repositories = RepositoryStore(self.context)
        self._tags = TagStore(self.context)
        self._manifests = ManifestStore(self.context, bus, max_manifest_bytes=max_manifest_bytes)
        self._referrers = ReferrerIndex(self.context)
        self._blobs = BlobStore(self.context)
        self._pushes = PushLog(self.context)
        self.uploads = Uploads(self.context)
        self.max_manifest_bytes = max_manifest_bytes

    # -- repositories ----------------------------------------------------------------------
    def is_public(self, name: str) -> bool:
        return self._repositories.is_public(name)

    def create_repository(self, name: str, *, public: bool = False) -> RepositoryInfo:
        """Create the repository if it is new (idempotent); pushing also creates it."""
        return self._repositories.create(name, public=public)

    def set_public(self, name: str, public: bool) -> None:
        """Allow (or stop) anonymous pulls; creates the repository if it is new."""
        self._repositories.set_public(name, public)

    def set_tag_mutability(self, name: str, mutability: TagMutability) -> None:
        """Whether pushed tags may move (ECR's immutability); creates the repository if new."""
        self._repositories.set_mutability(name, mutability)

    def set_lifecycle_policy(self, name: str, text: str | None) -> None:
        """Check and keep the repository's lifecycle policy (ECR's JSON); None removes it.
        LifecyclePolicyInvalid says what is wrong; NameUnknown if there is no repository."""
        if text is not None:
            parse_policy(text)
        self._repositories.set_lifecycle_policy(name, text)

    def set_lifecycle_preview(self, name: str, text: str) -> None:
        """Keep the policy ECR's lifecycle preview of the repository was started with."""
        self._repositories.set_lifecycle_preview(name, text)

    def mark_lifecycle_evaluated(self, name: str) -> None:
        self._repositories.mark_evaluated(name, self.context.clock.now())

    def repository(self, name: str) -> RepositoryInfo:
        return self._repositories.get(name)

    def repositories(self) -> list[RepositoryInfo]:
        """Every repository, in lexical order, with its number of tags and public flag."""
        return self._repositories.all()

    def catalog(
        self,
        n: int | None = None,
        last: str | None = None,
        visible: Callable[[str, bool], bool] | None = None,
    ) -> Page:
        """A page of repository names, only those `visible(name, public)` accepts if given."""
        return self._repositories.catalog(n, last, visible)

    def delete_repository(self, name: str) -> None:
        """Forget the repository, its tags, manifests and links (bytes go at the next gc)."""
        self._repositories.delete(name)

    # -- tags --------------------------------------------------------------------------------
    def tags(self, name: str) -> list[str]:
        return self._tags.page(name).items

    def tag_page(self, name: str, n: int | None = None, last: str | None = None) -> Page:
        return self._tags.page(name, n, last)

    def resolve(self, name: str, reference: str) -> str:
        """The digest a tag (or digest) names in the repository; ManifestUnknown if none."""
        return self._manifests.get(name, reference).digest

    def delete_tag(self, name: str, tag: str) -> None:
        self._tags.delete(name, tag)

    # -- manifests -------------------------------------------------------------------------
    def manifest(self, name: str, reference: str) -> StoredManifest:
        return self._manifests.get(name, reference)

    def manifest_bytes(self, manifest: StoredManifest) -> bytes:
        return self._manifests.content(manifest)

    def put_manifest(
        self,
        name: str,
        reference: str,
        data: bytes,
        content_type: str | None,
        actor: str = "",
    ) -> PushResult:
        """Validate and store a manifest under a tag or its digest; publish `ImagePushed`."""
        return self._manifests.put(name, reference, data, content_type, actor)

    def delete_manifest(self, name: str, digest: str) -> None:
        """Delete a manifest by digest, and the tags that point to it."""
        self._manifests.delete(name, digest)

    def untag(self, name: str, tag: str) -> None:
        """Remove a tag, and its manifest too if that was its last tag (ECR's way)."""
        self._manifests.untag(name, tag)

    def delete_reference(self, name: str, reference: str) -> None:
        """DELETE /v2/<name>/manifests/<reference>: a tag deletes only the tag."""
        self._manifests.delete_reference(name, reference)

    def images(self, name: str) -> list[ImageInfo]:
        """The repository's manifests with their tags, newest first."""
        return self._manifests.images(name)

    def index_children(self, name: str) -> set[str]:
        """Digests of manifests that an index of the repository lists."""
        return self._manifests.index_children(name)

    def image_sizes(self, name: str) -> dict[str, int]:
        """Each image's size: the blobs it references (an index: its largest child's)."""
        return self._manifests.image_sizes(name)

    def referrers(
        self, name: str, digest: str, artifact_type: str | None = None
    ) -> list[Descriptor]:
        """Descriptors of the manifests in `name` whose subject is `digest`."""
        return self._referrers.find(name, digest, artifact_type)

    # -- blobs -----------------------------------------------------------------------------
    def blob(self, name: str, digest: str) -> BlobInfo:
        """A blob the repository may serve; BlobUnknown otherwise."""
        return self._blobs.stat(name, digest)

    def open_blob(self, digest: str, start: int = 0) -> BlobReader:
        """The bytes of a blob `blob()` found, from `start` (the caller closes the reader;
        with `remote_storage`, opening and reading it wait on the network)."""
        return self._blobs.open(digest, start)

    @property
    def remote_storage(self) -> bool:
        """The blobs are on the network (S3): read them from worker threads."""
        return self.context.driver.remote

    def blob_url(self, digest: str) -> str | None:
        """Where a client may fetch a blob `blob()` found by itself (a presigned S3 URL when
        redirects are on); None: the registry sends it."""
        return self._blobs.url(digest)

    def delete_blob(self, name: str, digest: str) -> None:
        """Unlink the blob from the repository (its bytes go at the next gc if unused)."""
        self._blobs.unlink(name, digest)

    def mount_blob(self, name: str, digest: str, source: str) -> BlobInfo | None:
        """Link a blob of `source` into `name`; None when `source` does not have it."""
        return self._blobs.mount(name, digest, source)

    def record_blob(self, name: str, info: BlobInfo, upload_id: str | None = None) -> None:
        """A blob was committed by an upload to `name`: remember it, end the session."""
        self._blobs.record(name, info, upload_id)

    # -- events and maintenance ------------------------------------------------------------
    def push_events(self, repository: str | None = None, limit: int = 100) -> list[PushEvent]:
        """Manifest pushes, newest first."""
        return self._pushes.newest(repository, limit)

    def pushes_after(self, position: int, limit: int = 100) -> list[PushEvent]:
        """Manifest pushes with an id above `position`, oldest first (auto-deploy's log)."""
        return self._pushes.after(position, limit)

    def gc(
        self,
        dry_run: bool = False,
        grace_seconds: float = DEFAULT_GRACE_SECONDS,
        *,
        delete_untagged: bool = False,
    ) -> GcReport:
        """Mark and sweep unreferenced blobs, abandoned uploads and temp files (see gc.py)."""
        return collect(
            self.context,
            dry_run=dry_run,
            grace_seconds=grace_seconds,
            delete_untagged=delete_untagged,
        )

    def release_upload_holds(self) -> None:
        """Let go of the upload holds an earlier run of this process left (sessions.py)."""
        if self.context.process is not None:
            release_holds(self.context.records, self.context.process)

    def expire_uploads(self, max_idle_seconds: float) -> GcReport:
        """Remove upload sessions idle for longer than `max_idle_seconds` (files and rows)."""
        return expire_uploads(self.context, max_idle_seconds)
