"""Pages of a listing, as AWS's list operations hand them out: at most `maxResults` items, and
a `nextToken` to ask for the rest.

A token is the key of the last item given (base64url), so a page after it starts with the
next key in order: items made or deleted between two calls never shift a page (an offset
would). The names differ between services (`maxResults`/`nextToken` for ECR,
`MaxResults`/`NextToken` for App Runner): a `Paging` holds one service's.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from baepo.aws.params import Params

T = TypeVar("T")


@dataclass(frozen=True)
class Paging:
    max_results: str = "maxResults"
    next_token: str = "nextToken"
    default: int = 100
    maximum: int = 1000

    def page(
        self, params: Params, items: Iterable[T], key: Callable[[T], str]
    ) -> tuple[list[T], dict[str, str]]:
        """The items after the request's token, in `key` order, at most its `maxResults`;
        and the answer's token member (none after the last page)."""
        limit = params.integer(self.max_results, minimum=1, maximum=self.maximum) or self.default
        token = params.text(self.next_token)
        after = None if token is None else _decode(token)
        if token is not None and after is None:
            raise params.error(self.next_token, token, "be a token from an earlier answer")
        ordered = sorted(items, key=key)
        if after is not None:
            ordered = [item for item in ordered if key(item) > after]
        found = ordered[:limit]
        if len(ordered) <= limit:
            return found, {}
        return found, {self.next_token: _encode(key(found[-1]))}


def _encode(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode()


def _decode(token: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeError, ValueError):
        return None
