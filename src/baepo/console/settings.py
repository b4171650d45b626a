"""The settings page: the caller's API tokens (create one, its secret shown once; revoke one),
their AWS access keys (the same), the users (an admin's: create and delete them; anyone else
sees herself), and the local CA's certificate to download. Each a call of `/api/v1/tokens`,
`/api/v1/access-keys`, `/api/v1/users`, `/api/v1/ca`.

A new token's (or key's) secret is shown on the page the creating POST answers, not after a
redirect: it is never stored where a later page could show it again.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import RedirectResponse, Response

from baepo.console.client import segment
from baepo.console.deletions import Deletion, Describe
from baepo.console.errors import ApiRefused
from baepo.console.forms import Problems, names, refused_fields
from baepo.console.sessions import TOKEN_NAME
from baepo.console.visits import Visit

TOKEN_FIELDS = ("token_name", "token_repositories", "token_services")
USER_FIELDS = ("user_name", "user_password", "user_is_admin")
"""The forms' fields: the API's, after the form's own prefix (both have a `name`)."""
AS_FIELD = {"ALREADY_EXISTS": "name", "INVALID_REQUEST": "name"}
"""Refusals that name no field but are about the name (a taken name, a bad user name)."""
KEY_FIELDS = ("key_token",)
KEY_AS_FIELD = {"NOT_FOUND": "token", "INVALID_REQUEST": "token", "FORBIDDEN": "token"}


@dataclass
class Forms:
    """The settings page's forms (a token, an access key, a user): what was typed, what is
    wrong with it, and what was made."""

    token: dict[str, str] = field(default_factory=lambda: dict.fromkeys(TOKEN_FIELDS, ""))
    token_problems: Problems = field(default_factory=Problems)
    user: dict[str, str] = field(default_factory=lambda: dict.fromkeys(USER_FIELDS, ""))
    user_problems: Problems = field(default_factory=Problems)
    made: dict[str, Any] | None = None
    """The token just made, with its secret (shown this once)."""
    key_problems: Problems = field(default_factory=Problems)
    made_key: dict[str, Any] | None = None
    """The access key just made, with its secret (shown this once)."""


async def settings(visit: Visit) -> Response:
    return await show(visit, Forms())


async def show(visit: Visit, forms: Forms, status: int = 200) -> Response:
    me, tokens, keys = await asyncio.gather(
        visit.api.get("/whoami"), visit.api.get("/tokens"), access_keys(visit)
    )
    users = await visit.api.get("/users") if me["is_admin"] else [me]
    return await visit.render(
        "settings.html",
        status,
        tokens=tokens,
        keys=keys,
        lasting=[t for t in tokens if not t["name"].startswith(f"{TOKEN_NAME}-")],
        users=users,
        forms=forms,
        session_token=visit.session.token_name,
        console_prefix=f"{TOKEN_NAME}-",
    )


async def create_token(visit: Visit) -> Response:
    typed = {name: visit.form.get(name, "") for name in TOKEN_FIELDS}
    body = {
        "name": typed["token_name"].strip(),
        "repositories": names(typed["token_repositories"]),
        "services": names(typed["token_services"]),
    }
    forms = Forms(token=typed)
    if not body["name"]:
        forms.token_problems.add("token_name", "give the token a name", TOKEN_FIELDS)
        return await show(visit, forms, 400)
    try:
        made = await visit.api.post("/tokens", body)
    except ApiRefused as refused:
        if refused.status == 401:
            raise
        forms.token_problems = refused_fields(
            refused, TOKEN_FIELDS, prefix="token_", by_code=AS_FIELD
        )
        return await show(visit, forms, refused.status)
    return await show(visit, Forms(made=made), 201)


async def access_keys(visit: Visit) -> list[dict[str, Any]] | None:
    """The caller's AWS access keys; None where this Baepo has no AWS endpoint."""
    try:
        found: list[dict[str, Any]] = await visit.api.get("/access-keys")
    except ApiRefused as refused:
        if refused.status == 404:
            return None
        raise
    return found


async def create_access_key(visit: Visit) -> Response:
    """A key for one of the caller's tokens (not the session's: it ends at sign-out)."""
    token = visit.form.get("key_token", "")
    try:
        made = await visit.api.post("/access-keys", {"token": token})
    except ApiRefused as refused:
        if refused.status == 401:
            raise
        problems = refused_fields(refused, KEY_FIELDS, prefix="key_", by_code=KEY_AS_FIELD)
        return await show(visit, Forms(key_problems=problems), refused.status)
    return await show(visit, Forms(made_key=made), 201)


async def create_user(visit: Visit) -> Response:
    typed = {name: visit.form.get(name, "") for name in USER_FIELDS}
    body = {
        "name": typed["user_name"].strip(),
        "password": typed["user_password"],
        "is_admin": typed["user_is_admin"] == "yes",
    }
    forms = Forms(user={**typed, "user_password": ""})  # a password is never sent back to a page
    try:
        await visit.api.post("/users", body)
    except ApiRefused as refused:
        if refused.status == 401:
            raise
        forms.user_problems = refused_fields(refused, USER_FIELDS, prefix="user_", by_code=AS_FIELD)
        return await show(visit, forms, refused.status)
    return RedirectResponse("/settings#users", status_code=303)


def token_revocation(visit: Visit) -> Deletion:
    name = visit.request.path_params["name"]
    ending = name == visit.session.token_name
    return Deletion(
        title=f"Revoke token {name}",
        warning=(
            "This is the token of this very session: you will be signed out."
            if ending
            else "Whatever signs in with it (docker login, the CLI, a CI job) is refused from "
            "now on, and its access keys go with it."
        ),
        api_path=f"/tokens/{segment(name)}",
        back="/settings",
        after="/settings",
    )


def user_deletion(visit: Visit) -> Deletion:
    name = visit.request.path_params["name"]
    return Deletion(
        title=f"Delete user {name}",
        warning=f"{name} can no longer sign in, and every API token of {name}'s is revoked.",
        api_path=f"/users/{segment(name)}",
        back="/settings#users",
        after="/settings#users",
    )


def key_deletion(visit: Visit) -> Deletion:
    key_id = visit.request.path_params["key_id"]
    return Deletion(
        title=f"Delete access key {key_id}",
        warning="The aws CLI, boto3 or Terraform signing with it are refused from now on.",
        api_path=f"/access-keys/{segment(key_id)}",
        back="/settings#access-keys",
        after="/settings#access-keys",
    )


DELETIONS: tuple[tuple[str, Describe], ...] = (
    ("/settings/tokens/{name:path}/revoke", token_revocation),
    ("/settings/access-keys/{key_id}/delete", key_deletion),
    ("/settings/users/{name}/delete", user_deletion),
)
"""Each deletion's page (GET asks, POST deletes) and what it deletes."""
