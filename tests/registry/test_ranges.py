"""Range and Content-Range parsing, table by table."""

from __future__ import annotations

import pytest

from baepo.registry.errors import BlobUploadInvalid, RangeNotSatisfiable
from baepo.registry.ranges import ByteRange, parse_content_range, parse_length, parse_range


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
        ("bytes=\u00b2-", 100, None),  # not an ASCII digit: not a range we understand
        ("bytes=0-\u0669", 100, None),
        ("bytes=0-" + "9" * 5000, 100, ByteRange(0, 99)),  # a huge end is the blob's end
        ("bytes=-" + "9" * 5000, 100, ByteRange(0, 99)),
        ("bytes=" + "0" * 5000 + "5-9", 100, ByteRange(5, 9)),
        ("bytes=" + "9" * 5000 + "-1", 100, None),  # ends before it starts
    ],
)
def test_range(header: str | None, size: int, expected: ByteRange | None) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(
    ("header", "size"),
    [
        ("bytes=100-", 100),
        ("bytes=150-160", 100),
        ("bytes=0-", 0),
        ("bytes=-0", 100),
        ("bytes=" + "9" * 5000 + "-", 100),
        ("bytes=" + "9" * 19 + "-" + "9" * 20, 100),
    ],
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
        ("0-" + "9" * 5000, ByteRange(0, 2**63)),  # beyond any offset: the upload says 416
    ],
)
def test_content_range(header: str | None, expected: ByteRange | None) -> None:
    assert parse_content_range(header) == expected


@pytest.mark.parametrize(
    "header", ["abc", "5-", "-5", "9-3", "0-99/100x", "0-\u0661", "\u00b2-3", "9" * 5000 + "-1"]
)
def test_malformed_content_range(header: str) -> None:
    with pytest.raises(BlobUploadInvalid):
        parse_content_range(header)


@pytest.mark.parametrize(
    ("header", "length"),
    [
        (None, None),
        ("0", 0),
        ("1234", 1234),
        (" 12 ", 12),
        ("", None),
        ("-1", None),
        ("1e3", None),
        ("\u00b2", None),
        ("\u0661\u0662", None),
        ("9" * 19, None),
        ("9" * 5000, None),
    ],
)
def test_content_length(header: str | None, length: int | None) -> None:
    assert parse_length(header) == length
