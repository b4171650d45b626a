"""An operation's input, read field by field with the checks its service model names.

botocore validates parameters before it sends them, but not every client does (raw HTTP, other
SDKs, botocore with validation off): each field an operation reads is checked here, and bad
input is the service's own validation error (`JsonService.invalid`) in the words AWS's
services use, e.g.

    1 validation error detected: Value 'Bad!' at 'repositoryName' failed to satisfy
    constraint: Member must satisfy regular expression pattern: [a-z0-9]+…
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from baepo.aws.errors import AwsError


class Params:
    def __init__(self, data: Mapping[str, Any], invalid: type[AwsError], path: str = "") -> None:
        self._data = data
        self._invalid = invalid
        self._path = path

    def _where(self, name: str) -> str:
        return f"{self._path}.{name}" if self._path else name

    def error(self, name: str, value: object, constraint: str) -> AwsError:
        """The service's validation error for field `name` (what a handler's own checks raise
        too, in the same words)."""
        shown = "null" if value is None else repr(value)
        return self._invalid(
            f"1 validation error detected: Value {shown} at '{self._where(name)}' failed to "
            f"satisfy constraint: Member must {constraint}"
        )

    def has(self, name: str) -> bool:
        return self._data.get(name) is not None

    def text(
        self,
        name: str,
        *,
        pattern: str | None = None,
        min_length: int = 0,
        max_length: int | None = None,
    ) -> str | None:
        value = self._data.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.error(name, value, "be a string")
        if len(value) < min_length:
            raise self.error(name, value, f"have length greater than or equal to {min_length}")
        if max_length is not None and len(value) > max_length:
            raise self.error(name, value, f"have length less than or equal to {max_length}")
        if pattern is not None and re.fullmatch(pattern, value) is None:
            raise self.error(name, value, f"satisfy regular expression pattern: {pattern}")
        return value

    def required_text(
        self,
        name: str,
        *,
        pattern: str | None = None,
        min_length: int = 0,
        max_length: int | None = None,
    ) -> str:
        value = self.text(name, pattern=pattern, min_length=min_length, max_length=max_length)
        if value is None:
            raise self.error(name, None, "not be null")
        return value

    def choice(self, name: str, values: Sequence[str]) -> str | None:
        value = self.text(name)
        if value is not None and value not in values:
            raise self.error(name, value, f"satisfy enum value set: [{', '.join(values)}]")
        return value

    def integer(self, name: str, *, minimum: int, maximum: int) -> int | None:
        value = self._data.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(name, value, "be an integer")
        if value < minimum:
            raise self.error(name, value, f"have value greater than or equal to {minimum}")
        if value > maximum:
            raise self.error(name, value, f"have value less than or equal to {maximum}")
        return value

    def boolean(self, name: str) -> bool | None:
        value = self._data.get(name)
        if value is not None and not isinstance(value, bool):
            raise self.error(name, value, "be a boolean")
        return value

    def texts(
        self, name: str, *, min_items: int = 0, max_items: int | None = None
    ) -> list[str] | None:
        items = self._list(name, min_items, max_items)
        if items is None:
            return None
        for index, item in enumerate(items):
            if not isinstance(item, str):
                raise self.error(f"{name}.{index + 1}", item, "be a string")
        return list(items)

    def text_map(self, name: str, *, max_items: int | None = None) -> dict[str, str] | None:
        """A map of strings to strings (App Runner's RuntimeEnvironmentVariables)."""
        value = self._data.get(name)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise self.error(name, value, "be a map")
        if max_items is not None and len(value) > max_items:
            raise self.error(name, len(value), f"have at most {max_items} entries")
        for key, item in value.items():
            if not isinstance(item, str):
                raise self.error(f"{name}.{key}", item, "be a string")
        return dict(value)

    def structure(self, name: str) -> Params | None:
        value = self._data.get(name)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise self.error(name, value, "be a structure")
        return Params(value, self._invalid, self._where(name))

    def structures(
        self, name: str, *, min_items: int = 0, max_items: int | None = None
    ) -> list[Params] | None:
        items = self._list(name, min_items, max_items)
        if items is None:
            return None
        found = []
        for index, item in enumerate(items):
            where = f"{name}.{index + 1}"
            if not isinstance(item, Mapping):
                raise self.error(where, item, "be a structure")
            found.append(Params(item, self._invalid, self._where(where)))
        return found

    def _list(self, name: str, min_items: int, max_items: int | None) -> list[Any] | None:
        value = self._data.get(name)
        if value is None:
            return None
        if not isinstance(value, list):
            raise self.error(name, value, "be a list")
        if len(value) < min_items:
            raise self.error(name, value, f"have length greater than or equal to {min_items}")
        if max_items is not None and len(value) > max_items:
            raise self.error(name, value, f"have length less than or equal to {max_items}")
        return value
