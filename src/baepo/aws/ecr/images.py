"""ECR's image operations over Baepo's registry: ListImages, DescribeImages, BatchGetImage,
BatchDeleteImage.

An ECR image is a manifest in a repository, named by its digest or by one of its tags (an
`ImageIdentifier`). Deleting by digest deletes the image and its tags; deleting by tag removes
the tag, and the image with its last tag (as ECR does). The batch operations answer each
identifier on its own: found ones in `images`/`imageIds`, the others in `failures` with ECR's
failure codes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from baepo.aws import Call, Params
from baepo.aws.ecr.access import repository_name, require, visible
from baepo.aws.ecr.errors import ImageNotFound
from baepo.aws.paging import Paging
from baepo.references import InvalidReference, validate_tag
from baepo.registry import ImageInfo, ManifestUnknown, Registry

PAGING = Paging(default=100, maximum=1000)
DIGEST = re.compile(r"[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+")
TAG_STATUSES = ("TAGGED", "UNTAGGED", "ANY")


@dataclass(frozen=True)
class Failure(Exception):
    """One identifier of a batch that could not be served (ECR's `ImageFailure`)."""

    code: str
    reason: str


@dataclass(frozen=True)
class Found:
    image: ImageInfo
    tag: str | None

    def identifier(self) -> dict[str, str]:
        found = {"imageDigest": self.image.digest}
        return found | ({"imageTag": self.tag} if self.tag else {})


class Catalog:
    """One repository's images, looked up by ECR's image identifiers."""

    def __init__(self, images: Sequence[ImageInfo]) -> None:
        self.images = images
        self._by_digest = {image.digest: image for image in images}
        self._by_tag = {tag: image for image in images for tag in image.tags}

    def find(self, identifier: Params) -> Found:
        digest = identifier.text("imageDigest")
        tag = identifier.text("imageTag", min_length=1, max_length=300)
        if digest is None and tag is None:
            raise Failure(
                "MissingDigestAndTag",
                "Invalid request parameters: both tag and digest cannot be null",
            )
        if digest is not None and DIGEST.fullmatch(digest) is None:
            raise Failure("InvalidImageDigest", f"Invalid image digest '{digest}'")
        if tag is not None and not _is_tag(tag):
            raise Failure("InvalidImageTag", f"Invalid image tag '{tag}'")
        by_digest = self._by_digest.get(digest) if digest else None
        by_tag = self._by_tag.get(tag) if tag else None
        if digest and tag and by_digest is not None and by_tag is not by_digest:
            raise Failure(
                "ImageTagDoesNotMatchDigest",
                "Invalid request parameters: image tag does not match digest",
            )
        image = by_digest if digest else by_tag
        if image is None:
            raise Failure("ImageNotFound", "Requested image not found")
        return Found(image, tag)


def _is_tag(text: str) -> bool:
    try:
        validate_tag(text)
    except InvalidReference:
        return False
    return True


def _failure(identifier: Params, failure: Failure) -> dict[str, Any]:
    given = {k: identifier.text(k) for k in ("imageDigest", "imageTag")}
    return {
        "imageId": {k: v for k, v in given.items() if v is not None},
        "failureCode": failure.code,
        "failureReason": failure.reason,
    }


def _tagged(image: ImageInfo, status: str | None) -> bool:
    return status in (None, "ANY") or (status == "TAGGED") == bool(image.tags)


class Images:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def _catalog(self, call: Call, name: str, action: str = "pull") -> Catalog:
        if action == "pull":
            visible(call, self._registry, name)
        else:
            require(call, self._registry, name, action)
        return Catalog(self._registry.images(name))

    def list_ids(self, call: Call, params: Params) -> Mapping[str, Any]:
        name = repository_name(params)
        status = _tag_status(params)
        catalog = self._catalog(call, name)
        ids = [
            Found(image, tag)
            for image in catalog.images
            if _tagged(image, status)
            for tag in (image.tags or (None,))
        ]
        page, more = PAGING.page(params, ids, _identifier_key)
        return {"imageIds": [found.identifier() for found in page], **more}

    def describe(self, call: Call, params: Params) -> Mapping[str, Any]:
        name = repository_name(params)
        identifiers = params.structures("imageIds", min_items=1, max_items=100)
        status = _tag_status(params)
        catalog = self._catalog(call, name)
        more: dict[str, str] = {}
        if identifiers is not None:
            images = []
            for identifier in identifiers:
                try:
                    images.append(catalog.find(identifier).image)
                except Failure as exc:
                    raise _not_found(call, name, identifier) from exc
            page = list(dict.fromkeys(images))
        else:
            chosen = [image for image in catalog.images if _tagged(image, status)]
            page, more = PAGING.page(params, chosen, _digest)
        sizes = self._registry.image_sizes(name)
        return {"imageDetails": [_detail(call, name, image, sizes) for image in page], **more}

    def batch_get(self, call: Call, params: Params) -> Mapping[str, Any]:
        name = repository_name(params)
        identifiers = _identifiers(params)
        params.texts("acceptedMediaTypes", min_items=1, max_items=100)
        catalog = self._catalog(call, name)
        images, failures = [], []
        for identifier in identifiers:
            try:
                found = catalog.find(identifier)
                manifest = self._registry.manifest(name, found.image.digest)
                content = self._registry.manifest_bytes(manifest)
            except Failure as exc:
                failures.append(_failure(identifier, exc))
                continue
            except ManifestUnknown:  # deleted since the catalog was read
                failures.append(
                    _failure(identifier, Failure("ImageNotFound", "Requested image not found"))
                )
                continue
            images.append(
                {
                    "registryId": call.account,
                    "repositoryName": name,
                    "imageId": found.identifier(),
                    "imageManifest": content.decode(),
                    "imageManifestMediaType": manifest.media_type,
                }
            )
        return {"images": images, "failures": failures}

    def batch_delete(self, call: Call, params: Params) -> Mapping[str, Any]:
        name = repository_name(params)
        identifiers = _identifiers(params)
        catalog = self._catalog(call, name, "delete")
        deleted, failures = [], []
        for identifier in identifiers:
            try:
                found = catalog.find(identifier)
                self._delete(name, found)
            except Failure as exc:
                failures.append(_failure(identifier, exc))
                continue
            except ManifestUnknown:  # deleted since the catalog was read (or just now)
                failures.append(
                    _failure(identifier, Failure("ImageNotFound", "Requested image not found"))
                )
                continue
            deleted.append(found.identifier())
        return {"imageIds": deleted, "failures": failures}

    def _delete(self, name: str, found: Found) -> None:
        """A tag goes alone, unless it is the image's last: then the image goes too."""
        if found.tag is None:
            self._registry.delete_manifest(name, found.image.digest)
        else:
            self._registry.untag(name, found.tag)


def _tag_status(params: Params) -> str | None:
    found = params.structure("filter")
    if found is None:
        return None
    found.choice("imageStatus", ("ACTIVE", "ARCHIVED", "ACTIVATING", "ANY"))
    return found.choice("tagStatus", TAG_STATUSES)


def _identifiers(params: Params) -> list[Params]:
    found = params.structures("imageIds", min_items=1, max_items=100)
    if found is None:
        raise params.error("imageIds", None, "not be null")
    return found


def _identifier_key(found: Found) -> str:
    return f"{found.image.digest}\0{found.tag or ''}"


def _digest(image: ImageInfo) -> str:
    return image.digest


def _not_found(call: Call, name: str, identifier: Params) -> ImageNotFound:
    digest, tag = identifier.text("imageDigest"), identifier.text("imageTag")
    return ImageNotFound(
        f"The image with imageId {{imageDigest:'{digest or 'null'}', imageTag:'{tag or 'null'}'}}"
        f" does not exist within the repository with name '{name}' in the registry with id "
        f"'{call.account}'"
    )


def _detail(call: Call, name: str, image: ImageInfo, sizes: Mapping[str, int]) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "registryId": call.account,
        "repositoryName": name,
        "imageDigest": image.digest,
        "imageSizeInBytes": sizes.get(image.digest, 0),
        "imagePushedAt": image.pushed_at,
        "imageManifestMediaType": image.media_type,
    }
    if image.tags:
        detail["imageTags"] = list(image.tags)
    if image.artifact_type:
        detail["artifactMediaType"] = image.artifact_type
    if image.subject:
        detail["subjectManifestDigest"] = image.subject
    return detail
