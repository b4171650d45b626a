"""`n`/`last` pagination of tag and repository lists, as pure functions.

Lists are in lexical (byte) order, as Go's `sort.Strings`. A page holds the names after `last`,
at most `n` of them (`n` is capped at `MAX_PAGE`); when more follow, the response carries an
RFC 5988 header `Link: </v2/...?n=<n>&last=<last on this page>>; rel="next"`. `n=0` is an
empty page without a Link.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlencode

from baepo.registry.errors import PaginationInvalid

MAX_PAGE = 1000


@dataclass(frozen=True)
class Page:
    items: list[str]
    more: bool
    n: int | None  # the page size used, None for "everything"


_N = re.compile(r"[0-9]{1,9}")  # ASCII only (`str.isdigit` takes "²"); any larger n is capped


def parse_n(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not _N.fullmatch(value):
        raise PaginationInvalid("n must be a non-negative integer", {"n": value[:40]})
    return int(value)


def paginate(names: Iterable[str], n: int | None, last: str | None) -> Page:
    ordered = sorted(set(names), key=lambda s: s.encode())
    if last:
        key = last.encode()
        ordered = [x for x in ordered if x.encode() > key]
    limit = MAX_PAGE if n is None else min(n, MAX_PAGE)
    if n is None and len(ordered) <= MAX_PAGE:
        return Page(ordered, False, None)
    return Page(ordered[:limit], limit > 0 and len(ordered) > limit, limit)


def next_link(path: str, page: Page) -> str | None:
    """The `Link` header value for the page after `page`, or None when it is the last."""
    if not page.more or not page.items or page.n is None:
        return None
    query = urlencode({"n": page.n, "last": page.items[-1]})
    return f'<{path}?{query}>; rel="next"'
