"""`n`/`last` pagination and its Link header."""

from __future__ import annotations

import pytest

from baepo.registry.errors import PaginationInvalid
from baepo.registry.pagination import MAX_PAGE, Page, next_link, paginate, parse_n

NAMES = ["b", "a", "C", "a1", "B", "c"]  # byte order: B C a a1 b c


@pytest.mark.parametrize(
    ("n", "last", "items", "more"),
    [
        (None, None, ["B", "C", "a", "a1", "b", "c"], False),
        (2, None, ["B", "C"], True),
        (2, "C", ["a", "a1"], True),
        (2, "b", ["c"], False),
        (10, None, ["B", "C", "a", "a1", "b", "c"], False),
        (None, "a1", ["b", "c"], False),
        (0, None, [], False),
        (3, "zzz", [], False),
        (6, None, ["B", "C", "a", "a1", "b", "c"], False),
    ],
)
def test_paginate(n: int | None, last: str | None, items: list[str], more: bool) -> None:
    page = paginate(NAMES, n, last)
    assert (page.items, page.more) == (items, more)


def test_page_size_is_capped() -> None:
    names = [f"t{i:05d}" for i in range(MAX_PAGE + 5)]
    page = paginate(names, None, None)
    assert len(page.items) == MAX_PAGE and page.more
    assert paginate(names, MAX_PAGE * 3, None).items == page.items


@pytest.mark.parametrize(
    ("page", "link"),
    [
        (Page(["a", "b"], True, 2), '</v2/x/tags/list?n=2&last=b>; rel="next"'),
        (Page(["a", "b"], False, 2), None),
        (Page([], False, 0), None),
    ],
)
def test_next_link(page: Page, link: str | None) -> None:
    assert next_link("/v2/x/tags/list", page) == link


def test_next_link_escapes_names() -> None:
    link = next_link("/v2/_catalog", Page(["team/app"], True, 1))
    assert link == '</v2/_catalog?n=1&last=team%2Fapp>; rel="next"'


@pytest.mark.parametrize(("text", "n"), [(None, None), ("", None), ("0", 0), ("25", 25)])
def test_parse_n(text: str | None, n: int | None) -> None:
    assert parse_n(text) == n


@pytest.mark.parametrize(
    "text",
    ["-1", "abc", "1.5", " 3", "\u00b2", "\u0661", "1" * 10, "9" * 5000],
    ids=["negative", "letters", "fraction", "space", "superscript", "arabic", "ten", "huge"],
)
def test_parse_bad_n(text: str) -> None:
    with pytest.raises(PaginationInvalid):
        parse_n(text)
