"""`/api/v1/registry/repositories/<name>/…`: a repository's policies, ECR's rules for keeping a
registry sane: tag immutability, and a lifecycle policy (which images expire; ECR's JSON).

Reading them and previewing a policy take the right to pull the repository; changing them and
expiring images now are its owner's decision (the rights to push and delete, with an unlimited
token), as for the public flag. An image a service still runs never expires.
"""

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from baepo.api.errors import ApiError
from baepo.api.security import Identity, require_unlimited
from baepo.auth import repository
from baepo.auth.rights import allowed
from baepo.registry import (
    Expiry,
    LifecyclePolicies,
    NameUnknown,
    Registry,
    RepositoryInfo,
    TagMutability,
)


class MutabilityIn(BaseModel):
    immutable: bool = Field(description="pushed tags may not be moved to another image")
    exceptions: list[str] = Field(
        default_factory=list,
        max_length=5,
        description="wildcard filters (`latest`, `dev-*`) of tags that follow the other rule",
    )


class LifecyclePolicyIn(BaseModel):
    policy: str | None = Field(
        description="ECR's lifecycle policy JSON (as text); null removes the policy",
        max_length=30720,
    )


class PreviewIn(BaseModel):
    policy: str | None = Field(
        default=None,
        description="a policy to try (default: the repository's own)",
        max_length=30720,
    )


class PoliciesOut(BaseModel):
    repository: str
    immutable_tags: bool
    tag_exceptions: list[str]
    lifecycle_policy: str | None
    lifecycle_evaluated_at: datetime | None


class ExpiryOut(BaseModel):
    digest: str
    tags: list[str]
    pushed_at: datetime
    rule_priority: int


def _policies(info: RepositoryInfo) -> PoliciesOut:
    return PoliciesOut(
        repository=info.name,
        immutable_tags=info.mutability.immutable,
        tag_exceptions=list(info.mutability.exceptions),
        lifecycle_policy=info.lifecycle_policy,
        lifecycle_evaluated_at=info.lifecycle_evaluated_at,
    )


def _expiries(found: list[Expiry]) -> list[ExpiryOut]:
    return [
        ExpiryOut(digest=e.digest, tags=list(e.tags), pushed_at=e.pushed_at, rule_priority=e.rule)
        for e in found
    ]


def repository_policies_router(
    registry: Registry,
    who: Callable[..., Awaitable[Identity]],
    lifecycle: LifecyclePolicies | None = None,
) -> APIRouter:
    """The routes; those of lifecycle policies when `lifecycle` (which knows what services
    run) is given."""
    router = APIRouter(prefix="/api/v1/registry/repositories", tags=["registry"])
    Me = Annotated[Identity, Depends(who)]

    async def visible(me: Identity, name: str) -> RepositoryInfo:
        try:
            info = await run_in_threadpool(registry.repository, name)
        except NameUnknown:
            info = None
        if info is None or not allowed(me.rights, repository(name, "pull"), info.public):
            raise ApiError(404, "NOT_FOUND", f"no repository {name!r}")
        return info

    async def owned(me: Identity, name: str) -> RepositoryInfo:
        require_unlimited(me)
        info = await visible(me, name)
        for action in ("push", "delete"):
            if not allowed(me.rights, repository(name, action), info.public):
                raise ApiError(403, "FORBIDDEN", f"you may not change the policies of {name!r}")
        return info

    @router.get("/{name:path}/policies", response_model=PoliciesOut)
    async def show(name: str, me: Me) -> PoliciesOut:
        """The repository's tag immutability and lifecycle policy."""
        return _policies(await visible(me, name))

    @router.put("/{name:path}/tag-mutability", response_model=PoliciesOut)
    async def set_mutability(name: str, body: MutabilityIn, me: Me) -> PoliciesOut:
        """Make pushed tags immutable (a push over one is refused), or mutable again;
        `exceptions` are tags that follow the other rule."""
        await owned(me, name)
        mutability = TagMutability(body.immutable, tuple(body.exceptions))
        await run_in_threadpool(registry.set_tag_mutability, name, mutability)
        return _policies(await run_in_threadpool(registry.repository, name))

    if lifecycle is None:
        return router
    expiry = lifecycle

    @router.put("/{name:path}/lifecycle-policy", response_model=PoliciesOut)
    async def set_lifecycle_policy(name: str, body: LifecyclePolicyIn, me: Me) -> PoliciesOut:
        """Set (or with null remove) the repository's lifecycle policy, in ECR's JSON; it is
        checked as ECR checks it, and applied every hour."""
        await owned(me, name)
        await run_in_threadpool(registry.set_lifecycle_policy, name, body.policy)
        return _policies(await run_in_threadpool(registry.repository, name))

    @router.post("/{name:path}/lifecycle-policy/preview", response_model=list[ExpiryOut])
    async def preview(name: str, body: PreviewIn, me: Me) -> list[ExpiryOut]:
        """What the policy (the repository's, or one to try) would expire now, oldest first;
        images services run are kept."""
        await visible(me, name)
        return _expiries(await run_in_threadpool(expiry.preview, name, body.policy))

    @router.post("/{name:path}/lifecycle-policy/apply", response_model=list[ExpiryOut])
    async def apply(name: str, me: Me) -> list[ExpiryOut]:
        """Expire now what the repository's policy expires; what went, oldest first."""
        await owned(me, name)
        return _expiries(await run_in_threadpool(expiry.apply, name))

    return router
