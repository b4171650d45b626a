"""`/api/v1/registry/repositories/<name>/…`: a repository's policies, ECR's rules for keeping a
registry sane: tag immutability (and, in lifecycle-policy routes, which images expire).

Reading them takes the right to pull the repository; changing them is its owner's decision
(the right to push, with an unlimited token), as for the public flag.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from baepo.api.errors import ApiError
from baepo.api.security import Identity, require_unlimited
from baepo.auth import repository
from baepo.auth.rights import allowed
from baepo.registry import NameUnknown, Registry, RepositoryInfo, TagMutability


class MutabilityIn(BaseModel):
    immutable: bool = Field(description="pushed tags may not be moved to another image")
    exceptions: list[str] = Field(
        default_factory=list,
        max_length=5,
        description="wildcard filters (`latest`, `dev-*`) of tags that follow the other rule",
    )


class PoliciesOut(BaseModel):
    repository: str
    immutable_tags: bool
    tag_exceptions: list[str]


def _policies(info: RepositoryInfo) -> PoliciesOut:
    return PoliciesOut(
        repository=info.name,
        immutable_tags=info.mutability.immutable,
        tag_exceptions=list(info.mutability.exceptions),
    )


def repository_policies_router(
    registry: Registry, who: Callable[..., Awaitable[Identity]]
) -> APIRouter:
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
        if not allowed(me.rights, repository(name, "push"), info.public):
            raise ApiError(403, "FORBIDDEN", f"you may not change the policies of {name!r}")
        return info

    @router.get("/{name:path}/policies", response_model=PoliciesOut)
    async def policies(name: str, me: Me) -> PoliciesOut:
        """The repository's tag immutability."""
        return _policies(await visible(me, name))

    @router.put("/{name:path}/tag-mutability", response_model=PoliciesOut)
    async def set_mutability(name: str, body: MutabilityIn, me: Me) -> PoliciesOut:
        """Make pushed tags immutable (a push over one is refused), or mutable again;
        `exceptions` are tags that follow the other rule."""
        await owned(me, name)
        mutability = TagMutability(body.immutable, tuple(body.exceptions))
        await run_in_threadpool(registry.set_tag_mutability, name, mutability)
        return _policies(await run_in_threadpool(registry.repository, name))

    return router
