"""Signing in and out (see `sessions.py` for what a session is).

Signing in posts the user name and password to `POST /api/v1/login`, as `baepo login` does,
and keeps the API token it answers in the session cookie. It then revokes the user's console
tokens made more than `SESSION_S` before this one: their cookies have expired, so nobody uses
them but someone who copied one. Signing out revokes the session's token.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from baepo.console.client import Api, segment
from baepo.console.errors import ApiRefused
from baepo.console.sessions import (
    SESSION_S,
    TOKEN_NAME,
    Session,
    end_session,
    keep_session,
    keep_sign_in_nonce,
    new_sign_in_nonce,
    session_of,
    sign_in_nonce,
)
from baepo.console.visits import Console, Visit, read_form

FORGOTTEN_PER_SIGN_IN = 50
"""Old console tokens revoked at one sign-in at most (the rest at the next)."""


def local_path(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (no `//host`, no scheme), so
    that a link to the sign-in page cannot send a person elsewhere once signed in."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


class Signing:
    def __init__(self, console: Console) -> None:
        self.console = console

    async def form(self, request: Request) -> Response:
        target = local_path(request.query_params.get("next"))
        if session_of(request) is not None:
            return RedirectResponse(target, status_code=303)
        return self._form(request, target)

    def _form(
        self, request: Request, target: str, username: str = "", error: str = "", status: int = 200
    ) -> Response:
        nonce = sign_in_nonce(request) or new_sign_in_nonce()
        response = self.console.pages.render(
            request,
            "sign_in.html",
            status,
            csrf=self.console.forgery.token(nonce),
            target=target,
            username=username,
            error=error,
        )
        keep_sign_in_nonce(request, response, nonce)
        return response

    async def sign_in(self, request: Request) -> Response:
        form = await read_form(request) or {}
        target = local_path(form.get("next"))
        username = form.get("username", "").strip()
        if not self.console.forgery.accepts(request, sign_in_nonce(request), form):
            return self._form(
                request, target, username, "This sign-in form expired: try again.", 403
            )
        login = {
            "username": username,
            "password": form.get("password", ""),
            "token_name": TOKEN_NAME,
        }
        try:
            answer = await self.console.api(request).post("/login", login)
        except ApiRefused as refused:
            return self._form(request, target, username, _sign_in_problem(refused), refused.status)
        session = Session(answer["token"], answer["token_name"])
        with contextlib.suppress(ApiRefused):  # signing in does not depend on it
            await forget_old_sessions(self.console.api(request, session.token), session.token_name)
        response = RedirectResponse(target, status_code=303)
        keep_session(request, response, session)
        return response

    async def sign_out(self, visit: Visit) -> Response:
        with contextlib.suppress(ApiRefused):  # already revoked: signed out all the same
            await visit.api.delete(f"/tokens/{segment(visit.session.token_name)}")
        response = RedirectResponse("/sign-in", status_code=303)
        end_session(visit.request, response)
        return response


def _sign_in_problem(refused: ApiRefused) -> str:
    if refused.status == 401:
        return "Wrong user name or password."
    return refused.message[:1].upper() + refused.message[1:] + "."


async def forget_old_sessions(api: Api, current: str) -> None:
    """Revoke the caller's console tokens made more than `SESSION_S` before `current` (by the
    API's own times, so no clock of the console's is needed)."""
    made = {t["name"]: datetime.fromisoformat(t["created_at"]) for t in await api.get("/tokens")}
    now = made.get(current)
    if now is None:
        return
    old = [
        name
        for name, at in made.items()
        if name.startswith(f"{TOKEN_NAME}-") and (now - at).total_seconds() > SESSION_S
    ]
    for name in old[:FORGOTTEN_PER_SIGN_IN]:
        with contextlib.suppress(ApiRefused):  # revoked meanwhile by another sign-in
            await api.delete(f"/tokens/{segment(name)}")
