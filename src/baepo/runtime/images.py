"""The engine's local images, for `DockerEngine.images`, `remove_image` and `prune_images`.

list     GET /images/json?filters={"label": [k=v, …]}: top-level images only (a build's
         intermediate layers are not), one per image id with its RepoTags (Docker says
         ["<none>:<none>"] for an untagged one, Podman null); its Created is in whole
         seconds, so each image is inspected for the time to the nanosecond (builds a
         second apart are told apart)
remove   DELETE /images/{name}, neither forced nor keeping parents: the tag goes; the image
         with its last tag, and its parent layers that nothing else needs. 404: no such
         name; 409: a container uses the image (both engines)
prune    POST /images/prune?filters={"dangling": ["true"], "label": [k=v, …]}: untagged
         images with those labels that no container uses, and their unneeded parents
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from baepo.runtime.boundary import boundary
from baepo.runtime.engine import LocalImage
from baepo.runtime.engine_http import EngineClient, endpoint, timestamp
from baepo.runtime.errors import ImageNotFound

_UNTAGGED = "<none>:<none>"


def listed(client: EngineClient, labels: Mapping[str, str]) -> list[LocalImage]:
    """The images carrying all of `labels`, newest first (see `Engine.images`)."""
    with boundary("list images"):
        query = {"filters": json.dumps(_by_labels(labels))} if labels else {}
        summaries = client.json("GET", "/images/json", query=query)
    found = []
    for summary in summaries or []:
        own = {str(k): str(v) for k, v in (summary.get("Labels") or {}).items()}
        if any(own.get(k) != v for k, v in labels.items()):
            continue  # engines differ in how strictly they filter: checked again here
        image_id = str(summary["Id"])
        try:
            with boundary(f"inspect image {image_id}", not_found=ImageNotFound):
                attrs = client.json("GET", endpoint("/images/{}/json", image_id))
        except ImageNotFound:  # removed between the list and the inspect
            continue
        tags = tuple(t for t in summary.get("RepoTags") or [] if t != _UNTAGGED)
        found.append(LocalImage(image_id, tags, own, _created(attrs, summary)))
    return sorted(found, key=lambda image: (image.created, image.id), reverse=True)


def remove(client: EngineClient, ref: str) -> None:
    """Remove the name `ref` (see `Engine.remove_image`)."""
    try:
        with boundary(f"remove image {ref}", not_found=ImageNotFound):
            client.request("DELETE", endpoint("/images/{}", ref))
    except ImageNotFound:
        return


def prune(client: EngineClient, labels: Mapping[str, str]) -> None:
    """Remove the untagged images carrying `labels` (see `Engine.prune_images`)."""
    if not labels:
        raise ValueError("images are pruned by label: never every untagged image")
    filters = json.dumps({"dangling": ["true"], **_by_labels(labels)})
    with boundary("prune images"):
        client.request("POST", "/images/prune", query={"filters": filters})


def _by_labels(labels: Mapping[str, str]) -> dict[str, list[str]]:
    return {"label": [f"{key}={value}" for key, value in labels.items()]}


def _created(attrs: Mapping[str, Any], summary: Mapping[str, Any]) -> datetime:
    """The inspect's time, to the nanosecond; else the list's, in seconds."""
    precise = timestamp(attrs.get("Created"))
    if precise is not None:
        return precise
    return datetime.fromtimestamp(int(summary.get("Created") or 0), UTC)
