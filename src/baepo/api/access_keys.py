"""`/api/v1/access-keys`: AWS-style access keys of API tokens, for the aws CLI, boto3 and
Terraform at Baepo's AWS endpoint (docs/aws.md).

A key acts with the rights of the token it belongs to and dies with it. By default a key is
made for the token the caller signs in with; an unlimited caller may name another of their
tokens. A limited token sees and manages only its own keys: a key cannot widen what it may do.
"""

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from baepo.api.errors import ApiError
from baepo.api.security import Identity
from baepo.auth import AccessKey, AccessKeys


class AccessKeyCreate(BaseModel):
    token: str | None = Field(
        default=None,
        description="the API token whose rights the key carries (default: the one you call with)",
    )


class AccessKeyOut(BaseModel):
    access_key_id: str
    token: str
    created_at: datetime
    last_used_at: datetime | None
    secret_access_key: str | None = Field(
        default=None, description="the secret; shown only on creation"
    )


def _key(key: AccessKey) -> AccessKeyOut:
    return AccessKeyOut(
        access_key_id=key.key_id,
        token=key.token,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        secret_access_key=key.secret,
    )


def access_keys_router(keys: AccessKeys, who: Callable[..., Awaitable[Identity]]) -> APIRouter:
    router = APIRouter(prefix="/api/v1/access-keys", tags=["accounts"])
    Me = Annotated[Identity, Depends(who)]

    async def calling_token(me: Identity) -> str | None:
        if me.token is None:
            return None
        return await run_in_threadpool(keys.token_name, me.name, me.token)

    async def own_scope(me: Identity) -> str | None:
        """The one token a limited caller may see the keys of (None: all of the user's)."""
        return await calling_token(me) if me.limited else None

    @router.post("", response_model=AccessKeyOut, status_code=201)
    async def create(body: AccessKeyCreate, me: Me) -> AccessKeyOut:
        """A new access key (id and secret) acting with the token's rights: set them as
        AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."""
        current = await calling_token(me)
        token = body.token or current
        if token is None:
            raise ApiError(400, "INVALID_REQUEST", "name the API token the key acts for (token)")
        if me.limited and token != current:
            raise ApiError(
                403,
                "FORBIDDEN",
                f"this API token is limited to {me.limits()}: it may make keys for itself only",
            )
        return _key(await run_in_threadpool(keys.create, me.name, token))

    @router.get("", response_model=list[AccessKeyOut])
    async def list_keys(me: Me) -> list[AccessKeyOut]:
        """Your access keys (a limited token: its own), never their secrets."""
        scope = await own_scope(me)
        return [_key(k) for k in await run_in_threadpool(keys.keys, me.name, scope)]

    @router.delete("/{key_id}", status_code=204)
    async def delete(key_id: str, me: Me) -> None:
        """Revoke an access key at once (deleting its token revokes all of its keys)."""
        scope = await own_scope(me)
        await run_in_threadpool(keys.delete, me.name, key_id, scope)

    return router
