"""Clients that hold connections open without finishing a request cannot starve Baepo's own
port: headers have a deadline (408), a stalled body is cut, and beyond the connection limit a
new client gets 503 at once — while everyone else keeps being served."""

from __future__ import annotations

import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import BaepoProcess, running

pytestmark = pytest.mark.integration

MAX = 40


@pytest.fixture
def bounded(tmp_path: Path) -> Iterator[BaepoProcess]:
    flags = ("--max-connections", str(MAX), "--header-timeout", "2", "--body-timeout", "2")
    with running(tmp_path / "data", *flags) as server:
        yield server


def connect(server: BaepoProcess) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return conn


def read_until_closed(conn: socket.socket, within: float = 15) -> bytes:
    """Everything the server sends until it closes (bounded in time)."""
    conn.settimeout(1)
    got = b""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            chunk = conn.recv(4096)
        except TimeoutError:
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        got += chunk
    else:
        raise AssertionError(f"still open after {within} s; got {got!r}")
    return got


def test_a_half_sent_request_gets_408_and_is_closed(bounded: BaepoProcess) -> None:
    with connect(bounded) as conn:
        conn.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        answer = read_until_closed(conn)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"REQUEST_TIMEOUT" in answer


def test_a_silent_connection_is_closed_too(bounded: BaepoProcess) -> None:
    with connect(bounded) as conn:
        assert read_until_closed(conn).startswith(b"HTTP/1.1 408")


def test_a_stalled_body_is_cut(bounded: BaepoProcess) -> None:
    with connect(bounded) as conn:
        conn.sendall(
            b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"username": '
        )
        read_until_closed(conn)  # raises when the connection stays open


def test_beyond_the_limit_a_new_client_gets_503_and_the_port_recovers(
    bounded: BaepoProcess,
) -> None:
    held = [connect(bounded) for _ in range(MAX)]
    try:
        for conn in held:
            conn.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n")  # never finished
        with connect(bounded) as late:
            answer = read_until_closed(late)
        assert answer.startswith(b"HTTP/1.1 503"), answer
        assert b"TOO_MANY_CONNECTIONS" in answer
    finally:
        for conn in held:
            conn.close()
    deadline = time.monotonic() + 30
    status = None
    while time.monotonic() < deadline:
        try:
            status = httpx.get(bounded.url + "/api/v1/health", timeout=5).status_code
        except httpx.HTTPError:
            status = None
        if status == 200:
            break
        time.sleep(0.2)
    assert status == 200


def test_held_connections_are_freed_by_the_deadline_without_the_client_closing(
    bounded: BaepoProcess,
) -> None:
    held = [connect(bounded) for _ in range(MAX)]
    try:
        for conn in held:
            conn.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n")
        answers = [read_until_closed(conn) for conn in held]
        assert all(a.startswith(b"HTTP/1.1 408") for a in answers)
        assert httpx.get(bounded.url + "/api/v1/health", timeout=5).status_code == 200
    finally:
        for conn in held:
            conn.close()
    assert "Too many open files" not in bounded.log()


def test_with_the_defaults_a_half_sent_request_gets_408_and_the_cap_is_half_the_limit(
    baepo_server: BaepoProcess,
) -> None:
    """The same promises as a user gets them: no flags (15 s for headers, half the raised
    open-file limit for connections)."""
    with connect(baepo_server) as conn:
        conn.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n")
        answer = read_until_closed(conn, within=40)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1_048_576
    cap = max(64, min(16_384, hard // 2))  # Baepo raises its soft limit to the hard one
    assert f"at most {cap} connections; 15 s for a request's headers" in baepo_server.log()
