"""Manifest endpoints: GET/HEAD/PUT/DELETE of `/v2/<name>/manifests/<reference>`.

A manifest is served with the media type it was pushed with, whatever the `Accept` header
says: clients send long Accept lists and check the Content-Type they get (distribution does
the same for everything but schema 1, which this registry does not store).
"""

from __future__ import annotations

import anyio.to_thread
from starlette.responses import Response

from baepo.registry.errors import ManifestTooLarge, SizeInvalid
from baepo.registry.manifest_store import PushResult, StoredManifest
from baepo.registry.ranges import parse_length
from baepo.registry.references import parse_reference
from baepo.registry.web.call import Call
from baepo.registry.web.responses import ASGIResponse, empty


async def get(call: Call) -> ASGIResponse:
    parse_reference(call.arg, reading=True)
    registry = call.registry

    def load() -> tuple[StoredManifest, bytes]:
        found = registry.manifest(call.name, call.arg)
        return found, (b"" if call.head else registry.manifest_bytes(found))

    found, data = await call.run(load)
    headers = {
        "Docker-Content-Digest": found.digest,
        "ETag": f'"{found.digest}"',
        "Content-Length": str(found.size),
    }
    return Response(data, 200, headers, found.media_type)


async def put(call: Call) -> ASGIResponse:
    parse_reference(call.arg)
    limit = call.registry.max_manifest_bytes
    declared = parse_length(call.request.headers.get("content-length"))
    if declared is not None and declared > limit:
        raise ManifestTooLarge("manifest too large", {"limit": limit})
    body = bytearray()
    async for chunk in call.request.stream():
        body += chunk
        if len(body) > limit:
            raise ManifestTooLarge("manifest too large", {"limit": limit})
    if declared is not None and declared != len(body):
        raise SizeInvalid("body length does not match Content-Length")
    content_type = call.request.headers.get("content-type")

    def store() -> PushResult:
        return call.registry.put_manifest(
            call.name, call.arg, bytes(body), content_type, call.principal.subject
        )

    result = await anyio.to_thread.run_sync(store)
    headers = {
        "Location": f"/v2/{call.name}/manifests/{result.digest}",
        "Docker-Content-Digest": result.digest,
    }
    if result.subject:
        headers["OCI-Subject"] = result.subject
    return empty(201, headers)


async def delete(call: Call) -> ASGIResponse:
    parse_reference(call.arg, reading=True)
    await anyio.to_thread.run_sync(call.registry.delete_reference, call.name, call.arg)
    return empty(202, {})
