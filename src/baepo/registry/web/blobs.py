"""Blob endpoints: GET/HEAD (with Range) and DELETE of `/v2/<name>/blobs/<digest>`.

A GET of a blob on S3 with redirects on answers 307 to a presigned URL (the client then
fetches from S3, Range included), as distribution's S3 driver does.
"""

from __future__ import annotations

import anyio.to_thread
from starlette.responses import Response

from baepo.registry.errors import RangeNotSatisfiable
from baepo.registry.ranges import parse_range
from baepo.registry.references import parse_digest
from baepo.registry.web.call import Call
from baepo.registry.web.responses import ASGIResponse, BlobStream, empty


async def get(call: Call) -> ASGIResponse:
    digest = str(parse_digest(call.arg))
    info = await call.run(lambda: call.registry.blob(call.name, digest))
    headers = {
        "Content-Type": "application/octet-stream",
        "Docker-Content-Digest": digest,
        "ETag": f'"{digest}"',
        "Accept-Ranges": "bytes",
        "Cache-Control": "max-age=31536000",
    }
    if call.head:
        return Response(b"", 200, {**headers, "Content-Length": str(info.size)})
    url = call.registry.blob_url(digest)  # presigning is local work: no thread trip
    if url is not None:  # the client fetches the bytes from the storage (S3), Range and all
        return empty(307, {"Location": url, "Docker-Content-Digest": digest})
    try:
        wanted = parse_range(call.request.headers.get("range"), info.size)
    except RangeNotSatisfiable as exc:
        exc.headers = {"Content-Range": f"bytes */{info.size}"}
        raise
    start, length, status = 0, info.size, 200
    if wanted is not None:
        start, length, status = wanted.start, wanted.length, 206
        headers["Content-Range"] = f"bytes {wanted.start}-{wanted.end}/{info.size}"
    if call.registry.remote_storage:
        reader = await anyio.to_thread.run_sync(call.registry.open_blob, digest, start)
        return BlobStream(reader, length, status, headers, threaded=True)
    reader = call.registry.open_blob(digest, start)
    return BlobStream(reader, length, status, headers)


async def delete(call: Call) -> ASGIResponse:
    digest = str(parse_digest(call.arg))
    await anyio.to_thread.run_sync(call.registry.delete_blob, call.name, digest)
    return empty(202, {"Docker-Content-Digest": digest})
