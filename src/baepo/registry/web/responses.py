"""Responses of the registry's HTTP edge: OCI error bodies, JSON, and streamed blobs."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio.to_thread
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from baepo.registry.errors import RegistryError
from baepo.storage import BlobReader, StorageError

SEND_CHUNK = 1024 * 1024  # blobs go out in 1 MiB pieces, read straight from the driver

ASGIResponse = Callable[[Scope, Receive, Send], Awaitable[None]]


def error_response(error: RegistryError, *, head: bool = False) -> Response:
    body = json.dumps({"errors": [error.body()]}).encode()
    headers = dict(error.headers)
    if head:  # a HEAD answer has the headers of the GET answer, and no body
        headers["Content-Length"] = str(len(body))
        return Response(b"", error.status, headers, "application/json")
    return Response(body, error.status, headers, "application/json")


def json_response(
    value: Any,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    media_type: str = "application/json",
) -> Response:
    body = json.dumps(value, separators=(",", ":")).encode()
    return Response(body, status, dict(headers or {}), media_type)


def empty(status: int, headers: Mapping[str, str]) -> Response:
    return Response(b"", status, {**headers, "Content-Length": "0"})


class BlobStream:
    """Send `length` bytes from a driver reader, 1 MiB at a time, without a thread hop
    unless `threaded` (a remote driver's reads wait on the network).

    Reads from a local file hit the page cache and take microseconds; if the stored blob is
    shorter than promised (it cannot be, unless the disk was tampered with) the response is
    cut short and the client sees a short read rather than wrong bytes.
    """

    def __init__(
        self,
        reader: BlobReader,
        length: int,
        status: int,
        headers: Mapping[str, str],
        *,
        threaded: bool = False,
    ) -> None:
        self.reader = reader
        self.length = length
        self.status = status
        self.headers = dict(headers)
        self.threaded = threaded

    async def _read(self, size: int) -> bytes:
        if self.threaded:
            return await anyio.to_thread.run_sync(self.reader.read, size)
        return self.reader.read(size)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()]
        raw.append((b"content-length", str(self.length).encode()))
        try:
            await send({"type": "http.response.start", "status": self.status, "headers": raw})
            remaining = self.length
            if remaining == 0:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            while remaining > 0:
                try:
                    chunk = await self._read(min(SEND_CHUNK, remaining))
                except StorageError:
                    chunk = b""
                if not chunk:
                    break
                remaining -= len(chunk)
                await send(
                    {"type": "http.response.body", "body": chunk, "more_body": remaining > 0}
                )
        finally:
            self.reader.close()
