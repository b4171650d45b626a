"""Upload endpoints under `/v2/<name>/blobs/uploads/`.

    POST   uploads/                      start a session                     202 Location
    POST   uploads/?digest=<d>  + body   monolithic upload in one request    201
    POST   uploads/?mount=<d>&from=<r>   cross-repository mount              201, else 202
    PATCH  uploads/<uuid>       + chunk  append (Content-Range optional)     202 Range
    PUT    uploads/<uuid>?digest=<d>     finish (optional last chunk)        201
    GET    uploads/<uuid>                status                              204 Range
    DELETE uploads/<uuid>                cancel                              204

`Range: 0-<last byte>` reports what the session holds ("0-0" when it is empty, as
distribution does).
"""

from __future__ import annotations

import anyio.to_thread

from baepo.auth.access import repository
from baepo.registry.errors import BlobUploadInvalid, DigestInvalid, RegistryError
from baepo.registry.ranges import parse_content_range, parse_length
from baepo.registry.references import Digest, is_name, parse_digest
from baepo.registry.sessions import Upload
from baepo.registry.web.call import Call
from baepo.registry.web.responses import ASGIResponse, empty
from baepo.storage import BlobInfo


def _session_headers(call: Call, upload: Upload) -> dict[str, str]:
    return {
        "Location": f"/v2/{call.name}/blobs/uploads/{upload.id}",
        "Range": f"0-{max(upload.size - 1, 0)}",
        "Docker-Upload-UUID": upload.id,
    }


def _created(call: Call, info: BlobInfo) -> ASGIResponse:
    return empty(
        201,
        {"Location": f"/v2/{call.name}/blobs/{info.digest}", "Docker-Content-Digest": info.digest},
    )


def _content_length(call: Call) -> int | None:
    value = call.request.headers.get("content-length")
    length = parse_length(value)
    if value is not None and length is None:
        raise BlobUploadInvalid("invalid Content-Length", {"Content-Length": value[:40]})
    return length


def _digest_param(call: Call) -> Digest:
    value = call.request.query_params.get("digest")
    if not value:
        raise DigestInvalid("digest parameter missing")
    return parse_digest(value)


async def start(call: Call) -> ASGIResponse:
    query = call.request.query_params
    sessions = call.registry.uploads
    mounted = await _mount(call, query.get("mount"), query.get("from"))
    if mounted is not None:
        return _created(call, mounted)
    if query.get("digest"):
        digest = _digest_param(call)
        upload = await sessions.start(call.name, persist=False)
        try:
            await sessions.append(upload, call.request.stream(), None, _content_length(call))
            info = await sessions.finish(upload, digest)
        except BaseException:
            await sessions.discard(upload)
            raise
        return _created(call, info)
    upload = await sessions.start(call.name)
    return empty(202, _session_headers(call, upload))


async def _mount(call: Call, mount: str | None, source: str | None) -> BlobInfo | None:
    """Link the blob from `source` when the caller may pull it there; None to fall back to
    an upload session (as the spec asks when a mount is not possible)."""
    if not mount or not source or not is_name(source):
        return None
    try:
        digest = str(parse_digest(mount))
        await call.check(repository(source, "pull"), source)
    except RegistryError:
        return None
    return await anyio.to_thread.run_sync(call.registry.mount_blob, call.name, digest, source)


async def status(call: Call) -> ASGIResponse:
    upload = await call.registry.uploads.status(call.name, call.arg)
    return empty(204, _session_headers(call, upload))


async def patch(call: Call) -> ASGIResponse:
    sessions = call.registry.uploads
    content_range = parse_content_range(call.request.headers.get("content-range"))
    length = _content_length(call)
    upload = await sessions.find(call.name, call.arg)
    await sessions.append(upload, call.request.stream(), content_range, length)
    return empty(202, _session_headers(call, upload))


async def put(call: Call) -> ASGIResponse:
    sessions = call.registry.uploads
    digest = _digest_param(call)
    content_range = parse_content_range(call.request.headers.get("content-range"))
    length = _content_length(call)
    upload = await sessions.find(call.name, call.arg)
    await sessions.append(upload, call.request.stream(), content_range, length)
    info = await sessions.finish(upload, digest)
    return _created(call, info)


async def cancel(call: Call) -> ASGIResponse:
    await call.registry.uploads.cancel(call.name, call.arg)
    return empty(204, {})
