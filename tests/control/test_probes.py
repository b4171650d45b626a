"""`NetworkProber` against small servers on 127.0.0.1 that answer what each test scripts: good
answers, redirects, errors, garbage, endless headers, silence and early closes. Every probe
ends with a result (never an exception, never a hang) and closes its connection."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import pytest

from baepo.control import HealthCheck, NetworkProber, ProbeResult
from baepo.control.probes import MAX_HEADER_LINES, MAX_LINE_BYTES
from baepo.control.spec import Protocol

pytestmark = pytest.mark.anyio

Script = Callable[[asyncio.StreamWriter], Coroutine[Any, Any, None]]
HEALTHZ = HealthCheck(protocol=Protocol.HTTP, path="/healthz", timeout_s=1)


@dataclass
class Stub:
    """A server that reads each request's head, then plays its script while it waits for the
    prober to close its end."""

    script: Script
    address: str = ""
    requests: list[bytes] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            self.requests.append(await reader.readuntil(b"\r\n\r\n"))
            playing = asyncio.create_task(self.script(writer))
            with contextlib.suppress(OSError):
                while await reader.read(65536):
                    pass
            self.closed.set()
            playing.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await playing
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def serving(script: Script) -> AsyncIterator[Stub]:
    stub = Stub(script)
    server = await asyncio.start_server(stub.handle, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    stub.address = f"{host}:{port}"
    async with server:
        yield stub


async def probe(stub: Stub, check: HealthCheck = HEALTHZ) -> ProbeResult:
    result = await asyncio.wait_for(NetworkProber().probe(stub.address, check), timeout=10)
    await asyncio.wait_for(stub.closed.wait(), timeout=5)  # the prober closed its end
    return result


def answer(data: bytes, close: bool = True) -> Script:
    async def play(writer: asyncio.StreamWriter) -> None:
        writer.write(data)
        await writer.drain()
        if close:
            writer.close()
        else:
            await asyncio.Event().wait()  # the body never ends

    return play


def endless(prefix: bytes, chunk: bytes) -> Script:
    async def play(writer: asyncio.StreamWriter) -> None:
        writer.write(prefix)
        while True:
            writer.write(chunk)
            await writer.drain()

    return play


async def silent(writer: asyncio.StreamWriter) -> None:
    await asyncio.Event().wait()


async def trickle(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\n")
    while True:
        writer.write(b"X")
        await writer.drain()
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    ("script", "ok", "detail"),
    [
        (answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), True, "answered HTTP 200"),
        (answer(b"HTTP/1.0 204\r\n\r\n"), True, "answered HTTP 204"),
        (answer(b"HTTP/1.1 200 OK\r\n\r\n", close=False), True, "answered HTTP 200"),
        (
            answer(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 299 Fine\n\n"),
            True,
            "answered HTTP 299",
        ),
        (answer(b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\n\r\n"), False, "HTTP 302"),
        (answer(b"HTTP/1.1 404 Not Found\r\n\r\n"), False, "answered HTTP 404"),
        (answer(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n"), False, "answered HTTP 500"),
        (answer(b"HTTP/1.1 101 Switching Protocols\r\n\r\n"), False, "answered HTTP 101"),
        (answer(b"SSH-2.0-OpenSSH_9.2\r\n"), False, "not HTTP: 'SSH-2.0-OpenSSH_9.2'"),
        (answer(b"HTTP/1.1 2000 OK\r\n\r\n"), False, "the answer is not HTTP"),
        (answer(b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n"), False, "malformed header line"),
        (answer(b""), False, "failed: the connection was closed without an answer"),
        (answer(b"HTTP/1.1 200 OK\r\nX-A: b"), False, "closed in the middle of the answer"),
        (answer(b"HTTP/1.1 200 OK\r\n"), False, "closed in the middle of the answer"),
    ],
)
async def test_what_the_instance_answers_decides(script: Script, ok: bool, detail: str) -> None:
    async with serving(script) as stub:
        result = await probe(stub)
    assert result.ok is ok, result
    assert detail in result.detail, result
    assert result.detail.startswith("GET /healthz ")


async def test_the_request_is_a_plain_get_that_closes() -> None:
    check = HealthCheck(protocol=Protocol.HTTP, path="/health/é?full=1#top", timeout_s=1)
    async with serving(answer(b"HTTP/1.1 200 OK\r\n\r\n")) as stub:
        result = await probe(stub, check)
    assert result == ProbeResult(True, "GET /health/é?full=1#top answered HTTP 200")
    (head,) = stub.requests
    lines = head.decode("ascii").split("\r\n")
    assert lines[0] == "GET /health/%C3%A9?full=1 HTTP/1.1"
    assert f"Host: {stub.address}" in lines
    assert "Connection: close" in lines
    assert "User-Agent: baepo-health-check" in lines


async def test_a_redirect_is_not_followed() -> None:
    async with serving(answer(b"HTTP/1.1 200 OK\r\n\r\n")) as elsewhere:
        moved = f"HTTP/1.1 301 Moved\r\nLocation: http://{elsewhere.address}/\r\n\r\n"
        async with serving(answer(moved.encode())) as stub:
            result = await probe(stub)
    assert result == ProbeResult(False, "GET /healthz answered HTTP 301")
    assert elsewhere.requests == []


async def test_an_endless_header_line_fails_at_the_bound_not_the_timeout() -> None:
    async with serving(endless(b"HTTP/1.1 200 OK\r\nX-Long: ", b"a" * 4096)) as stub:
        result = await probe(stub)
    assert result == ProbeResult(
        False, f"GET /healthz failed: the answer has a line longer than {MAX_LINE_BYTES} bytes"
    )


async def test_endless_header_lines_fail_at_the_bound() -> None:
    async with serving(endless(b"HTTP/1.1 200 OK\r\n", b"X-Again: and again\r\n")) as stub:
        result = await probe(stub)
    assert result == ProbeResult(
        False, f"GET /healthz failed: the answer has more than {MAX_HEADER_LINES} header lines"
    )


@pytest.mark.parametrize("script", [silent, trickle], ids=["silent", "trickle"])
async def test_an_answer_that_never_ends_times_out(script: Script) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with serving(script) as stub:
        result = await probe(stub)
    assert result == ProbeResult(False, "GET /healthz timed out after 1 s")
    assert 0.9 < loop.time() - started < 5


async def test_a_server_that_closes_on_accept_fails() -> None:
    async def close_at_once(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(close_at_once, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    async with server:
        result = await NetworkProber().probe(f"{host}:{port}", HEALTHZ)
    assert not result.ok
    assert result.detail.startswith("GET /healthz failed: "), result


async def test_nothing_listening_is_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: refused
        result = await NetworkProber().probe(f"127.0.0.1:{port}", HEALTHZ)
    assert result == ProbeResult(False, "GET /healthz failed: connection refused")


async def test_a_malformed_address_is_a_failed_check() -> None:
    result = await NetworkProber().probe("127.0.0.1:http", HEALTHZ)
    assert not result.ok and result.detail.startswith("GET /healthz failed: ")


def test_the_prober_needs_no_http_library() -> None:
    code = "import sys, baepo.control.probes; print(sorted({'httpx', 'rich'} & set(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
