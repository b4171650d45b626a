"""The image builder of a pipeline run: a workspace becomes an image in Baepo's own registry.

    workspace/<context>/            the build context (`build.context` of baepo.yaml, "." by
                                    default); it must lie inside the workspace
    <context>/<dockerfile>          its Dockerfile, or a generated one (`dockerfile_text`: an
                                    apprunner.yaml app's) sent in its place
    <push host>/<repository>:<tag>  the image: built under that name by the engine (its classic
                                    builder keeps the layer cache between runs), then pushed

The push host is where the engine on this machine reaches Baepo's registry (`RegistryLink`'s
`pull_host`, its loopback address), so the engine needs neither a DNS name nor trust in
Baepo's CA; the credential is the one the engine pulls Baepo's images with (the composition
root's `engine_credentials`), asked for at each build so a rotated one is used. The same
credential is offered to the builder for every name of Baepo's registry, for a Dockerfile
`FROM` one of its images.

Every build leaves an image on the engine, labelled with its repository (`LABEL_REPOSITORY`).
After a deploy, `prune` removes a repository's older ones: it keeps the newest `KEEP_IMAGES`
(their layers are the next build's cache) and the one deployed (however old: a re-run of an
earlier commit builds nothing new), and the engine keeps any other a container uses. An image
removed here is still in Baepo's registry: a rollback pulls it again. The untagged images of
the repository (a tag that moved to a new image) go too; a failed build's layers do not: they
carry no label (the builder labels the last layer only).

Errors are the runtime room's, raised as they come: `BuildFailed` (the builder's message),
`BuildCancelled`, `PushFailed`, `EngineUnavailable`.
"""

from __future__ import annotations

import threading
from pathlib import Path

from baepo.clock import Clock
from baepo.control import RegistryLink
from baepo.references import InvalidReference, Reference
from baepo.runtime import (
    BuildCancelled,
    BuildFailed,
    BuildSpec,
    ContainerConflict,
    Engine,
    LineSink,
)

LABEL_REPOSITORY = "baepo.pipeline.repository"
"""Set on every image a pipeline builds: the registry repository it was built for."""
KEEP_IMAGES = 3
"""A repository's newest images the engine keeps after a deploy (`Builder.prune`)."""


class Builder:
    """Builds a workspace and pushes the image to Baepo's registry (thread-safe: no state)."""

    def __init__(
        self,
        engine: Engine,
        registry: RegistryLink,
        clock: Clock,
        *,
        cpu: float | None = None,
        memory_mb: int | None = None,
    ) -> None:
        if not registry.pull_host and not registry.hosts:
            raise ValueError("the builder needs a host where the engine reaches the registry")
        self._engine = engine
        self._registry = registry
        self._clock = clock
        self._cpu = cpu
        self._memory_mb = memory_mb

    @property
    def push_host(self) -> str:
        return self._registry.pull_host or self._registry.hosts[0]

    def build_and_push(
        self,
        workspace: Path,
        *,
        repository: str,
        tag: str,
        dockerfile: str = "Dockerfile",
        dockerfile_text: str | None = None,
        context: str = ".",
        on_line: LineSink,
        cancel: threading.Event | None = None,
    ) -> str:
        """Build `workspace` (its `context`, with `dockerfile` relative to that) and push it;
        the reference pushed, `<push host>/<repository>:<tag>`. Progress goes to `on_line`:
        the builder's lines, the push's, and a last line with the pushed digest."""
        ref = self._reference(repository, tag)
        root = self._context(workspace, context)
        credentials = self._registry.credentials()
        hosts = {*self._registry.hosts, self.push_host}
        started = self._clock.monotonic()
        image_id = self._engine.build(
            BuildSpec(
                context=root,
                tag=ref,
                dockerfile=dockerfile,
                dockerfile_text=dockerfile_text,
                labels={LABEL_REPOSITORY: repository},
                cpu=self._cpu,
                memory_mb=self._memory_mb,
                registry_auth={host: credentials for host in hosts} if credentials else {},
            ),
            on_line,
            cancel,
        )
        built = self._clock.monotonic()
        on_line(f"Built {image_id} in {built - started:.1f} s")
        if cancel is not None and cancel.is_set():
            raise BuildCancelled(f"the build of {ref} was cancelled")
        digest = self._engine.push(ref, credentials, on_line)
        on_line(f"Pushed {ref} ({digest}) in {self._clock.monotonic() - built:.1f} s")
        return ref

    def prune(self, repository: str, *, keep: str, count: int = KEEP_IMAGES) -> list[str]:
        """Remove the engine's images built for `repository` but the newest `count` and
        `keep`, then its untagged ones; the names removed. Only names of the repository in
        Baepo's registry are removed: a name someone else gave an image keeps it."""
        labels = {LABEL_REPOSITORY: repository}
        tagged = [image for image in self._engine.images(labels) if image.tags]
        kept = {image.id for image in tagged[:count]}
        kept |= {image.id for image in tagged if keep in image.tags}
        removed = []
        for image in tagged:
            if image.id in kept:
                continue
            for tag in image.tags:
                if not self._names(tag, repository):
                    continue
                try:
                    self._engine.remove_image(tag)
                except ContainerConflict:
                    continue  # a container uses it: the engine keeps its last name
                removed.append(tag)
        self._engine.prune_images(labels)
        return removed

    def _names(self, tag: str, repository: str) -> bool:
        """Whether `tag` is a name of `repository` in Baepo's registry."""
        try:
            name = Reference.parse(tag)
        except InvalidReference:
            return False
        ours = self._registry.owns(name) or name.domain == self.push_host
        return ours and name.path == repository

    def _reference(self, repository: str, tag: str) -> str:
        ref = f"{self.push_host}/{repository}:{tag}"
        try:
            Reference.parse(ref)
        except InvalidReference as exc:
            raise BuildFailed(f"cannot build {ref!r}: {exc}") from exc
        return ref

    @staticmethod
    def _context(workspace: Path, context: str) -> Path:
        base = workspace.resolve()
        root = (base / context).resolve()
        if root != base and base not in root.parents:
            raise BuildFailed(f"the build context {context!r} is outside the workspace")
        if not root.is_dir():
            raise BuildFailed(f"the build context {context!r} is not a directory")
        return root
