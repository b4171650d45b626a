"""Byte ranges and counts, as pure functions: a blob GET's `Range`, an upload chunk's
`Content-Range`, and a request's `Content-Length`.

Range: bytes=0-99 | bytes=100- | bytes=-50     (one range; several are served whole)
Content-Range: 0-99    (the spec's form; `bytes 0-99/*` as some clients send it too)
Content-Length: 1234   (ASCII digits only)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from baepo.registry.errors import BlobUploadInvalid, RangeNotSatisfiable

# ASCII digits only: `\d` also takes other scripts' digits, which `int()` reads but HTTP does not.
_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")
_CONTENT_RANGE = re.compile(r"(?:bytes[ =])?([0-9]+)-([0-9]+)(?:/(?:[0-9]+|\*))?")
_LENGTH = re.compile(r"[0-9]{1,18}")
# Past any blob size. A longer number counts as this: `int` refuses over 4300 digits.
_HUGE = 2**63


def _number(digits: str) -> int:
    """A decimal of any length; one of more than 18 significant digits counts as `_HUGE`."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= 18 else _HUGE


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The part of a `size`-byte blob a `Range` header asks for.

    None means "send the whole blob" (no header, a header we do not understand, or several
    ranges). RangeNotSatisfiable when the range starts past the end.
    """
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip().replace(" ", ""))
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        suffix = _number(last)
        if suffix == 0:
            raise RangeNotSatisfiable(size)
        return ByteRange(max(0, size - suffix), size - 1) if size else _unsatisfiable(size)
    start = _number(first)
    if last and _number(last) < start:
        return None  # syntactically invalid: ignore it (RFC 9110 14.2)
    if start >= size:
        raise RangeNotSatisfiable(size)
    end = _number(last) if last else size - 1
    return ByteRange(start, min(end, size - 1))


def _unsatisfiable(size: int) -> ByteRange:
    raise RangeNotSatisfiable(size)


def parse_content_range(header: str | None) -> ByteRange | None:
    """An upload chunk's `Content-Range`; None when absent. BlobUploadInvalid when malformed."""
    if header is None or not header.strip():
        return None
    match = _CONTENT_RANGE.fullmatch(header.strip())
    if match is None:
        raise BlobUploadInvalid("malformed Content-Range", {"Content-Range": header[:100]})
    start, end = _number(match.group(1)), _number(match.group(2))
    if end < start:
        raise BlobUploadInvalid(
            "Content-Range ends before it starts", {"Content-Range": header[:100]}
        )
    return ByteRange(start, end)


def parse_length(header: str | None) -> int | None:
    """A `Content-Length` in bytes; None when absent or not a plain decimal of up to 18
    digits (the caller decides whether that is an error)."""
    if header is None:
        return None
    value = header.strip()
    return int(value) if _LENGTH.fullmatch(value) else None
