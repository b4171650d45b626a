"""ECR's repository operations over Baepo's registry: CreateRepository, DescribeRepositories,
DeleteRepository, PutImageTagMutability.

Tag immutability is the registry's own (`TagMutability`): ECR's four modes are its two rules
with or without exceptions (`imageTagMutabilityExclusionFilters`, wildcards):

    MUTABLE                    TagMutability(False)
    IMMUTABLE                  TagMutability(True)
    IMMUTABLE_WITH_EXCLUSION   TagMutability(True, filters)    all fixed but the filters'
    MUTABLE_WITH_EXCLUSION     TagMutability(False, filters)   only the filters' fixed

Changing it is the repository owner's decision: a token limited to some repositories may push
to them but not change their rules (as for the public flag).

What ECR has and Baepo does not is refused or left out plainly: KMS encryption is refused
(Baepo does not encrypt images at rest), scan-on-push is never on, resource tags are not kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from baepo.aws import Call, Params
from baepo.aws.ecr.access import (
    REGISTRY_ID,
    denied,
    may,
    not_found,
    repository_arn,
    repository_name,
    require,
    visible,
)
from baepo.aws.ecr.errors import InvalidParameter, RepositoryAlreadyExists, RepositoryNotEmpty
from baepo.aws.paging import Paging
from baepo.registry import NameUnknown, Registry, RepositoryInfo, TagInvalid, TagMutability

PAGING = Paging(default=100, maximum=1000)
MODES = ("MUTABLE", "IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION", "MUTABLE_WITH_EXCLUSION")


class Repositories:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def create(self, call: Call, params: Params) -> Mapping[str, Any]:
        name = repository_name(params)
        _check_encryption(params)
        params.structures("tags")
        mutability = _mutability(params)
        if not may(call, name, "push"):
            raise denied(call, name)
        try:
            self._registry.repository(name)
        except NameUnknown:
            self._registry.create_repository(name)
            if mutability is not None:
                self._registry.set_tag_mutability(name, mutability)
            return {"repository": repository_shape(call, self._registry.repository(name))}
        raise RepositoryAlreadyExists(
            f"The repository with name '{name}' already exists in the registry with id "
            f"'{call.account}'"
        )

    def describe(self, call: Call, params: Params) -> Mapping[str, Any]:
        params.text("registryId", pattern=REGISTRY_ID)
        names = params.texts("repositoryNames", min_items=1, max_items=100)
        if names is not None:
            if params.has("maxResults") or params.has("nextToken"):
                raise InvalidParameter(
                    "maxResults and nextToken cannot be used together with repositoryNames"
                )
            found = [visible(call, self._registry, name) for name in names]
            return {"repositories": [repository_shape(call, info) for info in found]}
        seen = [
            info
            for info in self._registry.repositories()
            if may(call, info.name, "pull", info.public)
        ]
        page, more = PAGING.page(params, seen, _name)
        return {"repositories": [repository_shape(call, info) for info in page], **more}

    def delete(self, call: Call, params: Params) -> Mapping[str, Any]:
        name = repository_name(params)
        force = params.boolean("force") or False
        info = require(call, self._registry, name, "delete")
        if not force and self._registry.images(name):
            raise RepositoryNotEmpty(
                f"The repository with name '{name}' in registry with id '{call.account}' "
                "cannot be deleted because it still contains images"
            )
        try:
            self._registry.delete_repository(name)
        except NameUnknown as exc:
            raise not_found(call, name) from exc
        return {"repository": repository_shape(call, info)}

    def put_tag_mutability(self, call: Call, params: Params) -> Mapping[str, Any]:
        name = repository_name(params)
        mutability = _mutability(params)
        if mutability is None:
            raise params.error("imageTagMutability", None, "not be null")
        require(call, self._registry, name, "push")
        if call.caller.limited:
            raise denied(call, name)
        self._registry.set_tag_mutability(name, mutability)
        return {"registryId": call.account, "repositoryName": name, **_mutability_shape(mutability)}


def repository_shape(call: Call, info: RepositoryInfo) -> dict[str, Any]:
    """ECR's `Repository` for one of Baepo's."""
    return {
        "repositoryArn": repository_arn(call, info.name),
        "registryId": call.account,
        "repositoryName": info.name,
        "repositoryUri": f"{call.host}/{info.name}",
        "createdAt": info.created_at,
        **_mutability_shape(info.mutability),
        "imageScanningConfiguration": {"scanOnPush": False},
    }


def _mutability(params: Params) -> TagMutability | None:
    """The request's `imageTagMutability` (and exclusion filters), if it names one."""
    mode = params.choice("imageTagMutability", MODES)
    filters = params.structures("imageTagMutabilityExclusionFilters", min_items=1, max_items=5)
    if mode is None:
        return None
    patterns = []
    for item in filters or []:
        item.choice("filterType", ("WILDCARD",))
        patterns.append(item.required_text("filter", min_length=1, max_length=128))
    if mode.endswith("_WITH_EXCLUSION") != bool(patterns):
        raise params.error(
            "imageTagMutabilityExclusionFilters",
            None if filters is None else len(filters),
            "be given with, and only with, a *_WITH_EXCLUSION mutability",
        )
    try:
        return TagMutability(mode.startswith("IMMUTABLE"), tuple(patterns))
    except TagInvalid as exc:
        raise params.error("imageTagMutabilityExclusionFilters", patterns, exc.message) from exc


def _mutability_shape(mutability: TagMutability) -> dict[str, Any]:
    mode = "IMMUTABLE" if mutability.immutable else "MUTABLE"
    if not mutability.exceptions:
        return {"imageTagMutability": mode}
    filters = [{"filterType": "WILDCARD", "filter": p} for p in mutability.exceptions]
    return {
        "imageTagMutability": f"{mode}_WITH_EXCLUSION",
        "imageTagMutabilityExclusionFilters": filters,
    }


def _name(info: RepositoryInfo) -> str:
    return info.name


def _check_encryption(params: Params) -> None:
    encryption = params.structure("encryptionConfiguration")
    if encryption is None:
        return
    kind = encryption.choice("encryptionType", ("AES256", "KMS", "KMS_DSSE"))
    if kind != "AES256":
        raise encryption.error(
            "encryptionType", kind, "be AES256: Baepo does not encrypt images with KMS keys"
        )
