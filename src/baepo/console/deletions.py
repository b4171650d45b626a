"""Deleting something the console shows (a tag, an image, a repository, an API token, a user):
a page that asks first (GET), and the deletion (POST), which goes on to another page or shows
the API's refusal where it asked."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from starlette.responses import RedirectResponse, Response

from baepo.console.errors import ApiRefused
from baepo.console.visits import Page, Visit


@dataclass(frozen=True)
class Deletion:
    """Something to delete, and what the page that asks first says."""

    title: str
    warning: str
    api_path: str
    """What to delete (`DELETE /api/v1<api_path>`)."""
    back: str
    """The page to go back to when cancelled."""
    after: str
    """The page to go to once deleted."""
    read_path: str | None = None
    """What to read before asking (`GET`), so that asking about something that is not there
    (or not the caller's) is the API's "Not found" page."""


Describe = Callable[[Visit], Deletion]


def deletion_pages(describe: Describe) -> tuple[Page, Page]:
    """The page that asks first (GET) and the deletion (POST) of what `describe` names."""

    async def confirm(visit: Visit) -> Response:
        deletion = describe(visit)
        if deletion.read_path:
            await visit.api.get(deletion.read_path)
        return await visit.render("delete.html", deletion=deletion, problem="")

    async def delete(visit: Visit) -> Response:
        deletion = describe(visit)
        try:
            await visit.api.delete(deletion.api_path)
        except ApiRefused as refused:
            if refused.status in (401, 404):
                raise
            return await visit.render(
                "delete.html", refused.status, deletion=deletion, problem=refused.message
            )
        return RedirectResponse(deletion.after, status_code=303)

    return confirm, delete
