"""The page a browser gets for an address nobody serves: "Not found" as HTML, in the console's
look, instead of the API's JSON. Only for a browser asking for a page (`Accept: text/html`)
at a path outside the machine interfaces: `/api`, `/v2`, `/auth`, `/metrics`, `/git` and
`/internal` keep answering an unknown path with their JSON (or OCI) 404, whoever asks.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Scope

from baepo.console.errors import ApiRefused
from baepo.console.sessions import session_of
from baepo.console.visits import Console, Visit

MACHINE_PATHS = ("/api/", "/v2", "/auth/", "/metrics", "/git/", "/internal/")
NOT_FOUND = "There is no page at this address."


class BrowserPages(Route):
    """A route that takes only a browser's request for a page (GET) outside `MACHINE_PATHS`:
    placed last, it answers what no other route did. Anything else it does not even partly
    match, so that the answer stays the API's (404, or 405 for another method of a path)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            return Match.NONE, {}
        if scope["path"].startswith(MACHINE_PATHS):
            return Match.NONE, {}
        if "text/html" not in Request(scope).headers.get("accept", ""):
            return Match.NONE, {}
        return super().matches(scope)


def not_found_route(console: Console) -> Route:
    async def not_found(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return console.problem(request, 404, NOT_FOUND)
        visit = Visit(console, request, console.api(request, session.token), session)
        return await console.refused(visit, ApiRefused(404, "NOT_FOUND", NOT_FOUND))

    return BrowserPages("/{path:path}", not_found, include_in_schema=False)
