"""`/api/v1/login`, `/api/v1/users`, `/api/v1/tokens`: signing in, users and API tokens."""

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from baepo.api.errors import ApiError
from baepo.api.security import Identity, require_admin, require_unlimited
from baepo.auth import ApiToken, Auth, User
from baepo.auth.passwords import token_prefix


class LoginRequest(BaseModel):
    username: str
    password: str
    token_name: str = Field(default="cli", description="name of the API token to create")


class LoginResponse(BaseModel):
    username: str
    token: str
    token_name: str = Field(
        description="the new token's name: signing out revokes it (DELETE /api/v1/tokens/{name})"
    )


class UserOut(BaseModel):
    name: str
    is_admin: bool
    created_at: datetime


class UserCreate(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=8)
    is_admin: bool = False


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    repositories: list[str] = Field(
        default_factory=list, description="limit the token to these repositories (prefix*)"
    )
    services: list[str] = Field(
        default_factory=list,
        description="limit the token to reading and deploying these services (for CI)",
    )


class TokenOut(BaseModel):
    name: str
    user: str
    repositories: list[str]
    services: list[str]
    created_at: datetime
    last_used_at: datetime | None
    token: str | None = Field(default=None, description="the secret; shown only on creation")


def _user(u: User) -> UserOut:
    return UserOut(name=u.name, is_admin=u.is_admin, created_at=u.created_at)


def _token(t: ApiToken) -> TokenOut:
    return TokenOut(
        name=t.name,
        user=t.user,
        repositories=list(t.repositories),
        services=list(t.services),
        created_at=t.created_at,
        last_used_at=t.last_used_at,
        token=t.secret,
    )


def accounts_router(auth: Auth, who: Callable[..., Awaitable[Identity]]) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["accounts"])
    Caller = Annotated[Identity, Depends(who)]

    @router.post("/login", response_model=LoginResponse)
    async def login(body: LoginRequest, request: Request) -> LoginResponse:
        """Exchange a password for a new API token (what `baepo login` stores)."""
        if token_prefix(body.password) is not None:
            raise ApiError(401, "UNAUTHENTICATED", "sign in with a password, not an API token")
        address = request.client.host if request.client else None
        caller = await run_in_threadpool(
            auth.authenticate, body.username, body.password, address=address
        )
        name = caller.name
        stamp = datetime.now().strftime("%Y%m%d%H%M%S%f")
        token = await run_in_threadpool(auth.create_token, name, f"{body.token_name}-{stamp}")
        assert token.secret is not None
        return LoginResponse(username=name, token=token.secret, token_name=token.name)

    @router.post("/logout", status_code=204)
    async def logout(request: Request, me: Caller) -> None:
        """Revoke the API token this request is signed with (what `baepo logout` does, and
        `baepo login` with the token it replaces)."""
        scheme, _, secret = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or token_prefix(secret.strip()) is None:
            raise ApiError(
                400, "NOT_AN_API_TOKEN", "signing out revokes an API token: send it as the bearer"
            )
        await run_in_threadpool(auth.revoke_token, secret.strip())

    @router.get("/whoami", response_model=UserOut)
    async def whoami(me: Caller) -> UserOut:
        for u in await run_in_threadpool(auth.users):
            if u.name == me.name:
                return _user(u)
        return UserOut(name=me.name, is_admin=me.is_admin, created_at=datetime.now())

    @router.get("/users", response_model=list[UserOut])
    async def list_users(me: Caller) -> list[UserOut]:
        require_admin(me)
        return [_user(u) for u in await run_in_threadpool(auth.users)]

    @router.post("/users", response_model=UserOut, status_code=201)
    async def create_user(body: UserCreate, me: Caller) -> UserOut:
        require_admin(me)
        user = await run_in_threadpool(
            auth.create_user, body.name, body.password, is_admin=body.is_admin
        )
        return _user(user)

    @router.delete("/users/{name}", status_code=204)
    async def delete_user(name: str, me: Caller) -> None:
        require_admin(me)
        await run_in_threadpool(auth.delete_user, name)

    @router.get("/tokens", response_model=list[TokenOut])
    async def list_tokens(me: Caller) -> list[TokenOut]:
        require_unlimited(me)
        return [_token(t) for t in await run_in_threadpool(auth.tokens, me.name)]

    @router.post("/tokens", response_model=TokenOut, status_code=201)
    async def create_token(body: TokenCreate, me: Caller) -> TokenOut:
        """Create an API token; use it as a password (`docker login -u token`) or a bearer.

        `repositories` limits it to pushing and pulling those; `services` to reading and
        deploying those (both: a CI token that pushes and deploys)."""
        require_unlimited(me)
        token = await run_in_threadpool(
            auth.create_token,
            me.name,
            body.name,
            tuple(body.repositories),
            tuple(body.services),
        )
        return _token(token)

    @router.delete("/tokens/{name:path}", status_code=204)  # a name may hold a slash
    async def delete_token(name: str, me: Caller) -> None:
        require_unlimited(me)
        await run_in_threadpool(auth.delete_token, me.name, name)

    return router
