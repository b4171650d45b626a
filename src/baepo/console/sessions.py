"""A console session is an API token, held by the browser in an HttpOnly cookie.

Signing in is `POST /api/v1/login`, what `baepo login` calls: it makes an API token named
`console-<time>`, and the cookie carries that token (and its name, to revoke it). Every page
presents it to the API as a bearer token, so the API alone decides who may do what; signing out
revokes it (`DELETE /api/v1/tokens/{name}`), and a user sees her console sessions in
`baepo tokens ls` and may revoke one there, which signs that browser out at its next click.

Why the token itself and not a session id kept by the server: Baepo keeps no state in memory
that a restart would lose (sessions survive `baepo up` restarting, as every API token does), and
there is one source of truth for "is this signed in" (the API's token table) instead of two that
can disagree. The cookie is as good as a password for this user while it lives, which is what
any session cookie is; it is HttpOnly (no script reads it), SameSite=Lax, `Secure` when the
request came over HTTPS, and lasts `SESSION_S`. Encrypting it would add nothing: whoever holds
the cookie can replay it either way, and the token never appears in a page.

Over HTTPS the cookies are named `__Host-…`: a browser takes such a cookie only from the very
host, over HTTPS, for path `/`, so a service at `app.<domain>` cannot plant (toss) a cookie on
`registry.<domain>` where the console answers. (Over plain HTTP, as on `127.0.0.1:5000`, the
services live on other hosts anyway.)

Every form carries a CSRF token bound to the session: an HMAC, with a key only Baepo knows, of
the session cookie's value (before signing in, of a random `signin` cookie set with the form, so
that no site can sign a victim in as someone else). A forged form from another site has neither;
a tossed cookie without its HMAC is worth nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

SESSION_S = 8 * 3600
"""How long a console session lasts: a working day. Its token is revoked at the next sign-in
of the same user once older (see `signing.py`)."""
SIGN_IN_S = 3600
"""How long a sign-in form stays good."""
TOKEN_NAME = "console"
"""The API tokens the console makes are named `console-<time>`."""
SESSION_COOKIE = "baepo-session"
SIGN_IN_COOKIE = "baepo-signin"


@dataclass(frozen=True)
class Session:
    token: str
    token_name: str

    @property
    def value(self) -> str:
        """The cookie's value; neither part holds a '.' (see `passwords.new_token_secret`)."""
        return f"{self.token}.{self.token_name}"

    @classmethod
    def parse(cls, value: str) -> Session | None:
        token, dot, name = value.partition(".")
        if not dot or not token or not name.startswith(f"{TOKEN_NAME}-"):
            return None
        return cls(token, name)


def is_https(request: Request) -> bool:
    """Whether the browser spoke HTTPS (through the router, whose `X-Forwarded-Proto` uvicorn
    trusts from the router's address only)."""
    return request.url.scheme == "https"


def cookie_name(request: Request, name: str) -> str:
    return f"__Host-{name}" if is_https(request) else name


def session_of(request: Request) -> Session | None:
    value = request.cookies.get(cookie_name(request, SESSION_COOKIE))
    return Session.parse(value) if value else None


def keep_session(request: Request, response: Response, session: Session) -> None:
    _set(request, response, SESSION_COOKIE, session.value, SESSION_S)
    _drop(request, response, SIGN_IN_COOKIE)


def end_session(request: Request, response: Response) -> None:
    _drop(request, response, SESSION_COOKIE)


def sign_in_nonce(request: Request) -> str | None:
    return request.cookies.get(cookie_name(request, SIGN_IN_COOKIE))


def new_sign_in_nonce() -> str:
    return secrets.token_urlsafe(24)


def keep_sign_in_nonce(request: Request, response: Response, nonce: str) -> None:
    """The `signin` cookie, which the sign-in form's CSRF token is bound to."""
    _set(request, response, SIGN_IN_COOKIE, nonce, SIGN_IN_S)


def _drop(request: Request, response: Response, name: str) -> None:
    """A cookie's end, with the attributes it was set with (a browser takes a `__Host-`
    cookie's end only if it says `Secure` too)."""
    _set(request, response, name, "", 0)


def _set(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        cookie_name(request, name),
        value,
        max_age=max_age,
        path="/",
        secure=is_https(request),
        httponly=True,
        samesite="lax",
    )


class Forgery:
    """CSRF tokens: an HMAC of what the form is bound to (a session or a sign-in nonce)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def token(self, binding: str) -> str:
        digest = hmac.new(self._key, b"csrf\0" + binding.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def valid(self, binding: str | None, sent: str | None) -> bool:
        if not binding or not sent:
            return False
        return hmac.compare_digest(self.token(binding), sent)

    def accepts(self, request: Request, binding: str | None, form: dict[str, str]) -> bool:
        """Whether a posted form is this site's: its CSRF token is the one for `binding`, and
        its `Origin`, when the browser names one, is this very host (a second guard: a
        cross-site form is refused whatever it carries)."""
        return same_origin(request) and self.valid(binding, form.get("csrf"))


def same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return True
    _, _, rest = origin.partition("://")
    return rest == request.headers.get("host", "")
