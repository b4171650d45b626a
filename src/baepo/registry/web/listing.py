"""Listing endpoints: the version check, `_catalog`, `tags/list` and `referrers`."""

from __future__ import annotations

import anyio.to_thread

from baepo.registry.manifests import OCI_INDEX
from baepo.registry.pagination import Page, next_link, parse_n
from baepo.registry.references import parse_digest
from baepo.registry.web.call import Call
from baepo.registry.web.responses import ASGIResponse, json_response


async def base(call: Call) -> ASGIResponse:
    return json_response({})


def _page_headers(path: str, page: Page) -> dict[str, str]:
    link = next_link(path, page)
    return {"Link": link} if link else {}


async def catalog(call: Call) -> ASGIResponse:
    query = call.request.query_params
    n, last = parse_n(query.get("n")), query.get("last")
    principal = call.principal

    def visible(name: str, public: bool) -> bool:  # only what the caller may pull is listed
        return call.gate.may_pull(principal, name, public=public)

    page = await anyio.to_thread.run_sync(call.registry.catalog, n, last, visible)
    return json_response({"repositories": page.items}, headers=_page_headers("/v2/_catalog", page))


async def tags(call: Call) -> ASGIResponse:
    query = call.request.query_params
    n, last = parse_n(query.get("n")), query.get("last")
    page = await anyio.to_thread.run_sync(call.registry.tag_page, call.name, n, last)
    return json_response(
        {"name": call.name, "tags": page.items},
        headers=_page_headers(f"/v2/{call.name}/tags/list", page),
    )


async def referrers(call: Call) -> ASGIResponse:
    digest = str(parse_digest(call.arg))
    artifact_type = call.request.query_params.get("artifactType") or None
    found = await anyio.to_thread.run_sync(
        call.registry.referrers, call.name, digest, artifact_type
    )
    headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type else {}
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [d.as_json() for d in found],
    }
    return json_response(index, headers=headers, media_type=OCI_INDEX)
