"""What every console request goes through before its page: the session, the form, the CSRF
check, the API client; and how the API's refusals become pages.

A page is an `async (Visit) -> Response`; `Console.page` turns it into a Starlette endpoint:
- no session cookie: to the sign-in page (and back here after);
- a POST: its form is read (urlencoded, at most `FORM_LIMIT` bytes) and refused unless it
  carries the session's CSRF token and, when the browser names one, this host as its origin;
- the page calls the API as the session's token (`Visit.api`);
- the API's `401` (the token was revoked, or the user removed) ends the session; any other
  refusal the page did not handle itself becomes a page saying what the API said.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from baepo.console.client import Api
from baepo.console.errors import ApiRefused
from baepo.console.pages import Pages
from baepo.console.sessions import Forgery, Session, end_session, session_of

FORM_LIMIT = 1 << 20
"""A form's bytes at most: the variables' two text areas at their largest, with room."""
FORM_FIELDS = 64


@dataclass
class Visit:
    """One signed-in request to a page."""

    console: Console
    request: Request
    api: Api
    session: Session
    form: dict[str, str] = field(default_factory=dict)

    @property
    def csrf(self) -> str:
        return self.console.forgery.token(self.session.value)

    async def render(self, template: str, status: int = 200, **context: Any) -> Response:
        """A page with the signed-in user (the API's `whoami`) in its header."""
        user = await self.api.get("/whoami")
        return self.console.pages.render(
            self.request, template, status, csrf=self.csrf, user=user, **context
        )


Page = Callable[[Visit], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


class Console:
    """What the console's pages share: the templates, the CSRF key, the registry's hosts."""

    def __init__(self, key: bytes, registry_hosts: tuple[str, ...]) -> None:
        self.pages = Pages()
        self.forgery = Forgery(key)
        self.registry_hosts = registry_hosts

    def api(self, request: Request, token: str | None = None) -> Api:
        """The API of the app this request came to, called as `token`."""
        client = (request.client.host, request.client.port) if request.client else ("", 0)
        host = request.headers.get("host", "")
        state = request.scope.get("state")
        return Api(
            request.app,
            scheme=request.url.scheme,
            host=host,
            client=client,
            token=token,
            state=state,
        )

    def registry_host(self, request: Request) -> str:
        """The host images in Baepo's registry are named by: the one this page was asked
        at if it is one (what the person pushes to), else the first."""
        asked = request.headers.get("host", "")
        return asked if asked in self.registry_hosts else self.registry_hosts[0]

    def page(self, page: Page) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            session = session_of(request)
            if session is None:
                return to_sign_in(request)
            form: dict[str, str] = {}
            if request.method == "POST":
                read = await read_form(request)
                if read is None:
                    return self.problem(request, 400, "This form could not be read.")
                if not self.forgery.accepts(request, session.value, read):
                    return self.problem(
                        request, 403, "This form is stale or came from another site: reload "
                        "the page and try again."
                    )  # fmt: skip
                form = read
            visit = Visit(self, request, self.api(request, session.token), session, form)
            try:
                return await page(visit)
            except ApiRefused as refused:
                if refused.status == 401:
                    response = to_sign_in(request)
                    end_session(request, response)
                    return response
                return await self.refused(visit, refused)

        return endpoint

    async def refused(self, visit: Visit, refused: ApiRefused) -> Response:
        """The API's refusal as a page of its own (a service that is not there or not the
        caller's is the API's 404)."""
        context = {"message": refused.message, "status_code": refused.status}
        try:
            return await visit.render("problem.html", refused.status, **context)
        except ApiRefused:  # not even `whoami` answers: the page without the user's name
            return self.problem(visit.request, refused.status, refused.message)

    def problem(self, request: Request, status: int, message: str) -> Response:
        return self.pages.render(
            request, "problem.html", status, message=message, status_code=status
        )


def to_sign_in(request: Request) -> Response:
    """To the sign-in page, and back to this page after (what htmx follows, for its requests)."""
    target = "/sign-in"
    if request.method == "GET" and request.url.path != "/":
        target += "?next=" + quote(request.url.path, safe="/")
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


async def read_form(request: Request) -> dict[str, str] | None:
    """An urlencoded form of at most `FORM_LIMIT` bytes and `FORM_FIELDS` fields (None: not
    one). Starlette's own reader has no bound on a body's size."""
    kind = request.headers.get("content-type", "")
    if not kind.startswith("application/x-www-form-urlencoded"):
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_LIMIT:
            return None
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        return None
    return dict(pairs)
