"""The gateway's pure parts: whole pkt-lines, the CGI head, the error packet."""

from __future__ import annotations

import pytest

from baepo.pipelines.git_http import PktLines, error_packet, parse_cgi_head


def pkt(payload: bytes) -> bytes:
    return f"{len(payload) + 4:04x}".encode() + payload


@pytest.mark.parametrize(
    ("chunks", "forwarded", "whole"),
    [
        ([pkt(b"\x02hello\n") + b"0000"], [pkt(b"\x02hello\n") + b"0000"], True),
        ([pkt(b"\x01pack")[:5], pkt(b"\x01pack")[5:]], [b"", pkt(b"\x01pack")], True),
        ([b"00", b"0d", b"\x02progress"], [b"", b"", pkt(b"\x02progress")], True),
        ([b"0001" + b"0002" + pkt(b"x")[:3]], [b"00010002"], False),  # delim, response end
        ([pkt(b"abc") + b"zz", b"zz"], [pkt(b"abc"), b"zzzz"], False),  # not pkt-lines: raw
        ([b"0003"], [b"0003"], False),  # no such length: raw
    ],
)
def test_only_whole_packets_are_forwarded(
    chunks: list[bytes], forwarded: list[bytes], whole: bool
) -> None:
    lines = PktLines()
    assert [lines.feed(chunk) for chunk in chunks] == forwarded
    assert lines.whole is whole


def test_the_error_packet_is_a_side_band_error() -> None:
    packet = error_packet("git took too long")
    assert packet == pkt(b"\x03baepo: git took too long\n")
    lines = PktLines()
    assert lines.feed(packet) == packet and lines.whole


@pytest.mark.parametrize(
    ("head", "status", "headers"),
    [
        (
            b"Expires: Fri, 01 Jan 1980 00:00:00 GMT\r\n"
            b"Content-Type: application/x-git-receive-pack-result\r\n",
            200,
            [
                (b"expires", b"Fri, 01 Jan 1980 00:00:00 GMT"),
                (b"content-type", b"application/x-git-receive-pack-result"),
            ],
        ),
        (
            b"Status: 403 Forbidden\nContent-Type: text/plain\n",
            403,
            [(b"content-type", b"text/plain")],
        ),
        (b"Status: 404\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n", 404, []),
    ],
)
def test_the_cgi_head(head: bytes, status: int, headers: list[tuple[bytes, bytes]]) -> None:
    assert parse_cgi_head(head) == (status, headers)
