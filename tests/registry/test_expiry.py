"""Lifecycle policies applied to a registry: kept with the repository, previewed, applied on
demand and by the periodic loop; images in use, an index's children and the referrers of a
kept image stay."""

from __future__ import annotations

import asyncio
import json

import pytest

from baepo.clock import FakeClock
from baepo.registry import (
    LifecyclePolicies,
    LifecyclePolicyInvalid,
    LifecyclePolicyUnknown,
    NameUnknown,
    Registry,
)

from .conftest import AppClient
from .content import OCI_MANIFEST, Image, index, push_image, push_manifest

KEEP_3_RELEASES = json.dumps(
    {
        "rules": [
            {
                "rulePriority": 1,
                "selection": {
                    "tagStatus": "tagged",
                    "tagPatternList": ["release-*"],
                    "countType": "imageCountMoreThan",
                    "countNumber": 3,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 2,
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "imageCountMoreThan",
                    "countNumber": 1,
                },
                "action": {"type": "expire"},
            },
        ]
    }
)


def releases(client: AppClient, clock: FakeClock, count: int) -> list[Image]:
    """`release-0` … pushed a minute apart (the oldest first)."""
    pushed = []
    for n in range(count):
        pushed.append(push_image(client, "team/app", f"release-{n}"))
        clock.advance(60)
    return pushed


def test_a_policy_is_checked_and_kept_with_the_repository(
    client: AppClient, registry: Registry, clock: FakeClock
) -> None:
    push_image(client, "team/app", "1")
    policies = LifecyclePolicies(registry, lambda _: (), clock)
    with pytest.raises(LifecyclePolicyUnknown):
        policies.preview("team/app")
    with pytest.raises(LifecyclePolicyInvalid):
        registry.set_lifecycle_policy("team/app", '{"rules": []}')
    with pytest.raises(NameUnknown):
        registry.set_lifecycle_policy("team/none", KEEP_3_RELEASES)
    registry.set_lifecycle_policy("team/app", KEEP_3_RELEASES)
    assert registry.repository("team/app").lifecycle_policy == KEEP_3_RELEASES
    registry.set_lifecycle_policy("team/app", None)
    assert registry.repository("team/app").lifecycle_policy is None


def test_apply_expires_the_oldest_but_never_what_runs(
    client: AppClient, registry: Registry, clock: FakeClock
) -> None:
    pushed = releases(client, clock, 6)
    running = pushed[1].manifest.digest
    policies = LifecyclePolicies(registry, lambda name: {running}, clock)
    registry.set_lifecycle_policy("team/app", KEEP_3_RELEASES)
    preview = policies.preview("team/app")
    assert [e.tags for e in preview] == [("release-0",), ("release-2",)]
    assert registry.repository("team/app").lifecycle_evaluated_at is None

    applied = policies.apply("team/app")
    assert applied == preview
    left = sorted(tag for image in registry.images("team/app") for tag in image.tags)
    assert left == ["release-1", "release-3", "release-4", "release-5"]
    assert registry.repository("team/app").lifecycle_evaluated_at == clock.now()
    assert policies.apply("team/app") == []


def test_an_index_keeps_its_children_and_a_kept_image_its_referrers(
    client: AppClient, registry: Registry, clock: FakeClock
) -> None:
    one, two = push_image(client, "team/app"), push_image(client, "team/app")
    clock.advance(60)
    multi = index([one.manifest, two.manifest])
    assert push_manifest(client, "team/app", "release-1", multi).status_code == 201
    clock.advance(60)
    signature = push_image(client, "team/app", media_type=OCI_MANIFEST, subject=multi.descriptor())
    clock.advance(60)
    stray = push_image(client, "team/app")
    policies = LifecyclePolicies(registry, lambda _: (), clock)
    registry.set_lifecycle_policy("team/app", KEEP_3_RELEASES)
    # Untagged: the children, the signature and the stray; only the stray may go, and the
    # newest untagged one (the stray itself) is kept by the count.
    assert policies.preview("team/app") == []
    clock.advance(60)
    newer = push_image(client, "team/app")
    assert [e.digest for e in policies.apply("team/app")] == [stray.manifest.digest]
    assert {i.digest for i in registry.images("team/app")} == {
        one.manifest.digest,
        two.manifest.digest,
        multi.digest,
        signature.manifest.digest,
        newer.manifest.digest,
    }


def test_the_loop_applies_every_policy_periodically(
    client: AppClient, registry: Registry, clock: FakeClock
) -> None:
    releases(client, clock, 5)
    registry.set_lifecycle_policy("team/app", KEEP_3_RELEASES)
    push_image(client, "team/other", "release-1")  # no policy: untouched
    policies = LifecyclePolicies(registry, lambda _: (), clock, every_s=3600)

    async def one_pass() -> None:
        task = asyncio.create_task(policies.run())
        for _ in range(500):
            await asyncio.sleep(0.01)
            if registry.repository("team/app").lifecycle_evaluated_at is not None:
                break
        task.cancel()

    started = clock.now()
    asyncio.run(one_pass())
    assert len(registry.images("team/app")) == 3
    assert len(registry.images("team/other")) == 1
    evaluated = registry.repository("team/app").lifecycle_evaluated_at
    assert evaluated is not None and (evaluated - started).total_seconds() >= 3600
