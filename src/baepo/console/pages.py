"""Pages: Jinja2 templates (`templates/`) rendered on the server, with autoescape on.

Nothing a user typed can become markup or script in another user's browser: every value is
escaped when rendered, and every page says so to the browser too (`Content-Security-Policy`:
scripts, styles and images from Baepo only, no inline script, no framing). Pages are not
cached (they are one user's), and links leak no path to other sites (`Referrer-Policy`).

Jinja2 is imported at the first page rendered, not when the server starts: it is about 4 MiB
resident, which a Baepo whose console nobody opens need not pay (docs/benchmarks.md, idle
memory).
"""

from __future__ import annotations

from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from baepo.console.charts import HEIGHT, WIDTH, number
from baepo.console.forms import DEFAULTS, HELP, SIZES

if TYPE_CHECKING:
    import jinja2

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def when(value: str | None) -> str:
    """An API time (ISO 8601) as people read it: `2025-03-01 14:02:07 UTC`."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    zone = moment.tzname() or ""
    return f"{moment:%Y-%m-%d %H:%M:%S} {zone}".strip()


def memory(value: Any) -> str:
    """Memory in MB as `2 GB` / `512 MB`."""
    try:
        mb = int(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{mb / 1024:g} GB" if mb >= 1024 else f"{mb} MB"


def size(value: Any) -> str:
    """Bytes as people read them: `812 B`, `3.4 MB` (powers of 1000, as docker prints them)."""
    try:
        amount = float(value)
    except (TypeError, ValueError):
        return str(value)
    if amount < 1000:
        return f"{amount:.0f} B"
    for unit in ("kB", "MB"):
        amount /= 1000
        if amount < 1000:
            return f"{amount:.1f} {unit}"
    return f"{amount / 1000:.1f} GB"


class Pages:
    @cached_property
    def env(self) -> jinja2.Environment:
        import jinja2  # at the first page: see the module's docstring

        env = jinja2.Environment(
            loader=jinja2.PackageLoader("baepo.console", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.filters["when"] = when
        env.filters["memory"] = memory
        env.filters["size"] = size
        env.filters["number"] = number
        env.globals.update(defaults=DEFAULTS, help=HELP, sizes=SIZES, chart_size=(WIDTH, HEIGHT))
        return env

    def render(
        self, request: Request, template: str, status: int = 200, **context: Any
    ) -> Response:
        """`template` with `context`; every page also gets the request (for its path), and a
        `csrf` token and the signed-in `user` when the caller gave them."""
        context.setdefault("csrf", "")
        context.setdefault("user", None)
        html = self.env.get_template(template).render(request=request, **context)
        return HTMLResponse(html, status_code=status, headers=HEADERS)
