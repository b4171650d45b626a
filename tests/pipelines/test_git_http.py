"""The gateway: whole pkt-lines, the CGI head, the error packet; a backend that fails."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from baepo.pipelines.git_http import (
    BackendLimits,
    CgiCall,
    GitHttpBackend,
    PktLines,
    error_packet,
    parse_cgi_head,
)


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


def fake_git(tmp_path: Path, script: str) -> str:
    path = tmp_path / "git"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return str(path)


def serve(backend: GitHttpBackend, method: str = "GET", body: bytes = b"") -> httpx.Response:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await backend.serve(CgiCall("/app.git/info/refs", "alice", {}), scope, receive, send)

    async def ask() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://git") as client:
            return await client.request(method, "/git/app.git/info/refs", content=body)

    return asyncio.run(ask())


def test_a_backend_that_ends_without_an_answer_says_why(tmp_path: Path) -> None:
    backend = GitHttpBackend(
        tmp_path, git=fake_git(tmp_path, "echo 'fatal: no disk' >&2\nexit 128\n")
    )
    answer = serve(backend)
    assert answer.status_code == 502
    assert answer.text == "git http-backend ended (128) without an answer: fatal: no disk\n"
    assert backend.running == []


def test_a_backend_that_cannot_start_says_why(tmp_path: Path) -> None:
    answer = serve(GitHttpBackend(tmp_path, git=str(tmp_path / "missing")))
    assert answer.status_code == 500 and "cannot run git http-backend" in answer.text


def test_the_cgi_answer_and_environment_reach_the_client(tmp_path: Path) -> None:
    script = (
        "cat > /dev/null\n"
        "printf 'Status: 403 Forbidden\\r\\nContent-Type: text/plain\\r\\n\\r\\n'\n"
        'printf "%s %s %s %s" "$REQUEST_METHOD" "$PATH_INFO" "$REMOTE_USER" "$GIT_PROJECT_ROOT"\n'
    )
    answer = serve(GitHttpBackend(tmp_path, git=fake_git(tmp_path, script)), "POST", b"x" * 1000)
    assert answer.status_code == 403
    assert answer.text == f"POST /app.git/info/refs alice {tmp_path}"


def test_a_backend_that_says_much_on_stderr_is_not_stalled(tmp_path: Path) -> None:
    script = (
        "head -c 1000000 /dev/zero | tr '\\0' x >&2\n"
        "printf 'Content-Type: text/plain\\r\\n\\r\\nanswered'\n"
    )
    limits = BackendLimits(timeout_s=30)  # a stall would end here, as a 504
    answer = serve(GitHttpBackend(tmp_path, limits, git=fake_git(tmp_path, script)))
    assert (answer.status_code, answer.text) == (200, "answered")


def test_too_many_backends_at_once_are_refused(tmp_path: Path) -> None:
    backend = GitHttpBackend(tmp_path, BackendLimits(max_running=0))
    answer = serve(backend)
    assert answer.status_code == 503
