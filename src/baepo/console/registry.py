"""The registry's pages: repositories, a repository's images and tags, an image's layers and
referrers; deleting a tag, an image or a repository (each asks first); garbage collection (an
admin's). Each a call of `/api/v1/registry`.

A repository's name has slashes (`team/app`), so its pages are `/registry/team/app` and what
hangs off one comes after a `-` segment (`/registry/team/app/-/tags/1/delete`): no path segment
of a repository's name can be `-` (the OCI grammar starts each with a letter or a digit).
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from starlette.responses import RedirectResponse, Response

from baepo.console.client import segment
from baepo.console.deletions import Deletion, Describe
from baepo.console.errors import ApiRefused
from baepo.console.forms import Problems, names, refused_fields
from baepo.console.visits import Visit

PUSHES_SHOWN = 20
"""The newest pushes a repository's page lists."""
MUTABILITY_FIELDS = ("immutable", "exceptions")
BY_CODE = {"TAG_INVALID": "exceptions"}
"""The API's refusal of a tag filter names no field."""


def api_path(name: str) -> str:
    """A repository's path in the API (`/registry/repositories/team/app`)."""
    return f"/registry/repositories/{quote(name, safe='/')}"


def page_path(name: str) -> str:
    """A repository's page in the console (`/registry/team/app`)."""
    return f"/registry/{quote(name, safe='/')}"


async def repositories(visit: Visit) -> Response:
    found = await visit.api.get("/registry/repositories")
    host = visit.console.registry_host(visit.request)
    return await visit.render("registry.html", repositories=found, host=host)


async def repository(visit: Visit) -> Response:
    return await show_repository(visit, visit.request.path_params["name"])


async def show_repository(
    visit: Visit,
    name: str,
    status: int = 200,
    problems: Problems | None = None,
    typed: dict[str, str] | None = None,
) -> Response:
    """The repository's page; `problems` with what the API refused of a change of its
    settings, `typed` what the tag immutability form held."""
    path = api_path(name)
    images, pushes, policies, listed = await asyncio.gather(
        visit.api.get(f"{path}/images"),
        visit.api.get(f"{path}/events"),
        visit.api.get(f"{path}/policies"),
        visit.api.get("/registry/repositories"),
    )
    public = any(r["public"] for r in listed if r["name"] == name)
    host = visit.console.registry_host(visit.request)
    values = typed or {
        "immutable": "yes" if policies["immutable_tags"] else "no",
        "exceptions": " ".join(policies["tag_exceptions"]),
    }
    return await visit.render(
        "repository.html",
        status,
        name=name,
        host=host,
        images=[{**i, "kind": kind(i)} for i in images],
        tags=tag_rows(images),
        pushes=pushes[:PUSHES_SHOWN],
        policies=policies,
        public=public,
        values=values,
        problems=problems or Problems(),
    )


async def set_public(visit: Visit) -> Response:
    """Make the repository public (anyone may pull it, signed in or not) or private again."""
    name = visit.request.path_params["name"]
    body = {"public": visit.form.get("public") == "yes"}
    try:
        await visit.api.call("PUT", f"{api_path(name)}/public", body)
    except ApiRefused as refused:
        if refused.status in (401, 404):
            raise
        return await show_repository(
            visit, name, refused.status, Problems(general=[refused.message])
        )
    return RedirectResponse(page_path(name), status_code=303)


async def set_tag_mutability(visit: Visit) -> Response:
    name = visit.request.path_params["name"]
    typed = {field: visit.form.get(field, "") for field in MUTABILITY_FIELDS}
    body = {"immutable": typed["immutable"] == "yes", "exceptions": names(typed["exceptions"])}
    try:
        await visit.api.call("PUT", f"{api_path(name)}/tag-mutability", body)
    except ApiRefused as refused:
        if refused.status in (401, 404):
            raise
        problems = refused_fields(refused, MUTABILITY_FIELDS, by_code=BY_CODE)
        return await show_repository(visit, name, refused.status, problems, typed)
    return RedirectResponse(page_path(name), status_code=303)


def kind(image: dict[str, Any]) -> str:
    """What an image (the API's image or manifest) is, in a word: an image, an index (of
    images for several platforms), or an artifact that refers to another (a signature, an
    SBOM: its artifact type)."""
    if image["subject"]:
        return str(image["artifact_type"] or "artifact")
    media_type = str(image["media_type"])
    return "index" if "index" in media_type or "manifest.list" in media_type else "image"


def tag_rows(images: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row a tag, in the order of tags' names, with its image's digest, size and push."""
    rows = [{"tag": tag, **image} for image in images for tag in image["tags"]]
    return sorted(rows, key=lambda row: row["tag"])


async def image(visit: Visit) -> Response:
    params = visit.request.path_params
    name, digest = params["name"], params["digest"]
    found = await visit.api.get(f"{api_path(name)}/manifests/{segment(digest)}")
    blobs = [*found["layers"], *([found["config"]] if found["config"] else [])]
    size = sum(blob["size"] for blob in blobs)
    return await visit.render("image.html", name=name, image=found, size=size, kind=kind(found))


def tag_deletion(visit: Visit) -> Deletion:
    params = visit.request.path_params
    name, tag = params["name"], params["tag"]
    return Deletion(
        title=f"Delete tag {tag} of {name}",
        warning=(
            f"Pulls of {name}:{tag} fail from now on. The image stays, under its digest and "
            "its other tags."
        ),
        api_path=f"{api_path(name)}/tags/{segment(tag)}",
        read_path=f"{api_path(name)}/manifests/{segment(tag)}",
        back=page_path(name),
        after=page_path(name),
    )


def image_deletion(visit: Visit) -> Deletion:
    params = visit.request.path_params
    name, digest = params["name"], params["digest"]
    return Deletion(
        title=f"Delete image {digest[:19]}… of {name}",
        warning=(
            "The image and every tag that points to it are gone for good; its layers are freed "
            "at the next garbage collection unless another image uses them."
        ),
        api_path=f"{api_path(name)}/manifests/{segment(digest)}",
        read_path=f"{api_path(name)}/manifests/{segment(digest)}",
        back=f"{page_path(name)}/-/images/{quote(digest, safe=':')}",
        after=page_path(name),
    )


def repository_deletion(visit: Visit) -> Deletion:
    name = visit.request.path_params["name"]
    return Deletion(
        title=f"Delete repository {name}",
        warning=(
            f"Every tag and image of {name} is gone for good; its layers are freed at the next "
            "garbage collection unless another repository uses them."
        ),
        api_path=api_path(name),
        read_path=f"{api_path(name)}/policies",
        back=page_path(name),
        after="/registry",
    )


DELETIONS: tuple[tuple[str, Describe], ...] = (
    ("/registry/{name:path}/-/tags/{tag}/delete", tag_deletion),
    ("/registry/{name:path}/-/images/{digest}/delete", image_deletion),
    ("/registry/{name:path}/-/delete", repository_deletion),
)
"""Each deletion's page (GET asks, POST deletes) and what it deletes."""


async def gc_form(visit: Visit) -> Response:
    return await visit.render("gc.html", report=None)


async def gc(visit: Visit) -> Response:
    """Run the garbage collection (or only say what it would free) and show its report."""
    dry_run = visit.form.get("dry_run") == "yes"
    report = await visit.api.post("/registry/gc", {"dry_run": dry_run})
    return await visit.render("gc.html", report=report)
