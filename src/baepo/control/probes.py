"""Health probes: is an instance answering on its port the way its health check says?

The reconciler asks a `Prober`; tests give it a fake. `NetworkProber` is the real one: for an
HTTP check a `GET` of the path that must answer 2xx within the timeout (redirects are not
followed, as App Runner does not), for a TCP check a connection accepted within the timeout.

The HTTP check speaks just enough HTTP/1.1 on asyncio streams, not through an HTTP library
(the long-running server should not carry one for a status line):

    connect ─▶ send  GET <path> HTTP/1.1 · Host · Connection: close · User-Agent
            ─▶ read  status line, header lines up to the blank line (1xx answers skipped)
            ─▶ close (the body is never read)

The whole exchange, connect included, is bounded by the check's timeout, and what is read is
bounded too (a line of at most 8 KiB, at most 100 lines): an endless header, an answer that
is not HTTP, or a connection closed early is a failed check with its reason, never a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote

from baepo.control.spec import HealthCheck
from baepo.control.spec import Protocol as CheckProtocol

MAX_LINE_BYTES = 8 * 1024
MAX_HEADER_LINES = 100
_STATUS_LINE = re.compile(rb"HTTP/1\.\d (\d{3})(?: [^\r\n]*)?\r?\n")
_HEADER_LINE = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+:|[ \t])[^\r\n]*\r?\n")
# What a path may keep as it is in a request line; anything else (non-ASCII, quotes, braces)
# is percent-encoded as a URL library would.
_PATH_SAFE = "/%:@!$&()*+,;=?~[]"


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str
    """Why, for the operation log: "HTTP 200", "connection refused", "timed out after 2 s"."""


class Prober(Protocol):
    async def probe(self, address: str, check: HealthCheck) -> ProbeResult:
        """Check the instance at `address` (`127.0.0.1:<port>`); never raises."""
        ...


class _NotHttp(Exception):
    """What the instance answered cannot be read as an HTTP response."""


class NetworkProber:
    async def probe(self, address: str, check: HealthCheck) -> ProbeResult:
        if check.protocol is CheckProtocol.HTTP:
            return await self._http(address, check)
        return await self._tcp(address, check)

    async def _http(self, address: str, check: HealthCheck) -> ProbeResult:
        host, _, port = address.rpartition(":")
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(check.timeout_s):
                reader, writer = await asyncio.open_connection(
                    host.strip("[]"), int(port), limit=MAX_LINE_BYTES
                )
                writer.write(_request(address, check.path))
                await writer.drain()
                status = await _read_status(reader)
        except TimeoutError:
            return ProbeResult(False, f"GET {check.path} timed out after {check.timeout_s} s")
        except ConnectionRefusedError:
            return ProbeResult(False, f"GET {check.path} failed: connection refused")
        except (_NotHttp, OSError, ValueError) as exc:
            return ProbeResult(False, f"GET {check.path} failed: {_reason(exc)}")
        finally:
            if writer is not None:
                # abort, not close: nothing is left to send, and close would wait to flush
                # a buffer to a peer that may have stopped reading.
                writer.transport.abort()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
        ok = 200 <= status < 300
        return ProbeResult(ok, f"GET {check.path} answered HTTP {status}")

    async def _tcp(self, address: str, check: HealthCheck) -> ProbeResult:
        host, _, port = address.rpartition(":")
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(host, int(port)), timeout=check.timeout_s
            )
        except TimeoutError:
            return ProbeResult(False, f"TCP connect timed out after {check.timeout_s} s")
        except (OSError, ValueError) as exc:
            return ProbeResult(False, f"TCP connect failed: {_reason(exc)}")
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return ProbeResult(True, "TCP connect accepted")


def request_target(path: str) -> str:
    """What goes on the request line for `path` (a fragment is not sent, as no client sends
    one); no quote or space is left in it, so the router's configuration can carry it too."""
    return quote(path.partition("#")[0], safe=_PATH_SAFE)


def _request(address: str, path: str) -> bytes:
    """The health check's request for `path`."""
    target = request_target(path)
    return (
        f"GET {target} HTTP/1.1\r\n"
        f"Host: {address}\r\n"
        "Connection: close\r\n"
        "User-Agent: baepo-health-check\r\n"
        "Accept: */*\r\n"
        "\r\n"
    ).encode("ascii")


async def _read_status(reader: asyncio.StreamReader) -> int:
    """The final status code of the answer, once its header lines are read; raises `_NotHttp`.

    Interim answers (1xx but 101) are read past, as HTTP clients do; every line counts
    towards the bound, so endless interim answers fail too."""
    lines = 0
    while True:
        status_line = await _line(reader, first=lines == 0)
        lines += 1
        match = _STATUS_LINE.fullmatch(status_line)
        if match is None:
            raise _NotHttp(f"the answer is not HTTP: {_shown(status_line)}")
        while (line := await _line(reader, first=False)) not in (b"\r\n", b"\n"):
            lines += 1
            if lines > MAX_HEADER_LINES:
                raise _NotHttp(f"the answer has more than {MAX_HEADER_LINES} header lines")
            if _HEADER_LINE.fullmatch(line) is None:
                raise _NotHttp(f"the answer has a malformed header line: {_shown(line)}")
        status = int(match[1])
        if not 100 <= status < 200 or status == 101:
            return status


async def _line(reader: asyncio.StreamReader, first: bool) -> bytes:
    try:
        return await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        if first and not exc.partial:
            raise _NotHttp("the connection was closed without an answer") from exc
        raise _NotHttp("the connection was closed in the middle of the answer") from exc
    except asyncio.LimitOverrunError as exc:
        raise _NotHttp(f"the answer has a line longer than {MAX_LINE_BYTES} bytes") from exc


def _shown(line: bytes) -> str:
    text = line.rstrip(b"\r\n").decode("ascii", "replace")
    return repr(text[:40] + "…" if len(text) > 40 else text)


def _reason(exc: BaseException) -> str:
    while exc.__cause__ is not None and not str(exc):
        exc = exc.__cause__
    return str(exc) or type(exc).__name__
