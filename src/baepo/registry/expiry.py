"""Lifecycle policies applied to the registry: previewed, applied on demand, and applied to
every repository that has one every `every_s` seconds (an hour by default; ECR takes up to a
day).

What a policy expires is planned by the pure `lifecycle.plan` over the repository's images,
keeping those something still runs (`in_use`, which the composition root answers from the
control room's services: every revision of a live service, and the image it is configured
with) and those another image of the repository needs (an index's children, the referrers of
an image still there). Expiring is deleting the manifest and its tags; its blobs go at the next
garbage collection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection

from baepo.clock import Clock
from baepo.registry.errors import LifecyclePolicyUnknown, ManifestUnknown, RegistryError
from baepo.registry.lifecycle import Candidate, Expiry, parse_policy, plan
from baepo.registry.service import Registry

log = logging.getLogger("baepo.registry")

InUse = Callable[[str], Collection[str]]
"""The digests of a repository's images that something still runs or may run again."""
EVERY_S = 3600.0


class LifecyclePolicies:
    def __init__(
        self, registry: Registry, in_use: InUse, clock: Clock, every_s: float = EVERY_S
    ) -> None:
        self._registry = registry
        self._in_use = in_use
        self._clock = clock
        self.every_s = every_s

    def preview(self, name: str, text: str | None = None) -> list[Expiry]:
        """What the repository's policy (or `text`, checked) would expire now, oldest first."""
        if text is None:
            text = self._registry.repository(name).lifecycle_policy
            if text is None:
                raise LifecyclePolicyUnknown(detail={"name": name})
        policy = parse_policy(text)
        images = self._registry.images(name)
        needed = self._registry.index_children(name)
        present = {image.digest for image in images}
        needed |= {image.digest for image in images if image.subject in present}
        candidates = [
            Candidate(image.digest, image.tags, image.pushed_at)
            for image in images
            if image.digest not in needed
        ]
        return plan(policy, candidates, self._clock.now(), set(self._in_use(name)))

    def apply(self, name: str) -> list[Expiry]:
        """Expire what the repository's policy expires now; what went, oldest first."""
        expired = []
        for expiry in self.preview(name):
            try:
                self._registry.delete_manifest(name, expiry.digest)
            except ManifestUnknown:
                continue  # deleted meanwhile
            expired.append(expiry)
        self._registry.mark_lifecycle_evaluated(name)
        return expired

    def apply_all(self) -> dict[str, list[Expiry]]:
        """Apply every repository's policy; what each expired (one that fails is logged and
        the others still run)."""
        done: dict[str, list[Expiry]] = {}
        for info in self._registry.repositories():
            if info.lifecycle_policy is None:
                continue
            try:
                done[info.name] = self.apply(info.name)
            except RegistryError as exc:
                log.warning("lifecycle policy of %s not applied: %s", info.name, exc)
        return done

    async def run(self) -> None:
        """Every `every_s` seconds, apply every repository's policy (until cancelled)."""
        while True:
            await self._clock.sleep(self.every_s)
            try:
                done = await asyncio.to_thread(self.apply_all)
            except Exception:  # the loop outlives any one failure (`in_use` is another room's)
                log.exception("lifecycle policies not applied")
                continue
            for name, expired in done.items():
                if expired:
                    log.info("lifecycle policy of %s expired %d images", name, len(expired))
