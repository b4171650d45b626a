"""Range and Content-Range parsing, table by table."""

from __future__ import annotations

import pytest

from baepo.registry.errors import BlobUploadInvalid, RangeNotSatisfiable
from baepo.registry.ranges import ByteRange, parse_content_range, parse_range


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 100, None),
        ("", 100, None),
        ("bytes=0-9", 100, ByteRange(0, 9)),
        ("bytes=10-", 100, ByteRange(10, 99)),
        ("bytes=90-200", 100, ByteRange(90, 99)),
        ("bytes=-10", 100, ByteRange(90, 99)),
        ("bytes=-500", 100, ByteRange(0, 99)),
        ("bytes=99-99", 100, ByteRange(99, 99)),
        ("bytes=0-0,5-9", 100, None),  # several ranges: served whole
        ("items=0-9", 100, None),
        ("bytes=9-0", 100, None),
        ("bytes=-", 100, None),
    ],
)
def test_range(header: str | None, size: int, expected: ByteRange | None) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(
    ("header", "size"),
    [("bytes=100-", 100), ("bytes=150-160", 100), ("bytes=0-", 0), ("bytes=-0", 100)],
)
def test_unsatisfiable_range(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable) as caught:
        parse_range(header, size)
    assert caught.value.status == 416


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("0-99", ByteRange(0, 99)),
        ("100-199", ByteRange(100, 199)),
        ("bytes 0-99/*", ByteRange(0, 99)),
        ("bytes=0-99", ByteRange(0, 99)),
        ("0-0", ByteRange(0, 0)),
    ],
)
def test_content_range(header: str | None, expected: ByteRange | None) -> None:
    assert parse_content_range(header) == expected


@pytest.mark.parametrize("header", ["abc", "5-", "-5", "9-3", "0-99/100x"])
def test_malformed_content_range(header: str) -> None:
    with pytest.raises(BlobUploadInvalid):
        parse_content_range(header)
