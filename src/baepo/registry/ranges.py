"""Byte ranges, as pure functions: a blob GET's `Range` and an upload chunk's `Content-Range`.

Range: bytes=0-99 | bytes=100- | bytes=-50     (one range; several are served whole)
Content-Range: 0-99    (the spec's form; `bytes 0-99/*` as some clients send it too)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from baepo.registry.errors import BlobUploadInvalid, RangeNotSatisfiable

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_CONTENT_RANGE = re.compile(r"(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?")


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
        suffix = int(last)
        if suffix == 0:
            raise RangeNotSatisfiable(size)
        return ByteRange(max(0, size - suffix), size - 1) if size else _unsatisfiable(size)
    start = int(first)
    if last and int(last) < start:
        return None  # syntactically invalid: ignore it (RFC 9110 14.2)
    if start >= size:
        raise RangeNotSatisfiable(size)
    end = int(last) if last else size - 1
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
    start, end = int(match.group(1)), int(match.group(2))
    if end < start:
        raise BlobUploadInvalid("Content-Range ends before it starts", {"Content-Range": header})
    return ByteRange(start, end)
