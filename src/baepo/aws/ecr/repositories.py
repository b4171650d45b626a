"""ECR's repository operations over Baepo's registry: CreateRepository, DescribeRepositories,
DeleteRepository.

What ECR has and Baepo does not is refused or left out plainly: KMS encryption is refused
(Baepo does not encrypt images at rest), scan-on-push is never on, resource tags are not kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from baepo.aws import Call, Params
from baepo.aws.ecr.access import (
    denied,
    may,
    not_found,
    repository_name,
    repository_shape,
    require,
    visible,
)
from baepo.aws.ecr.errors import InvalidParameter, RepositoryAlreadyExists, RepositoryNotEmpty
from baepo.aws.paging import Paging
from baepo.registry import NameUnknown, Registry, RepositoryInfo

PAGING = Paging(default=100, maximum=1000)


class Repositories:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def create(self, call: Call, params: Params) -> Mapping[str, Any]:
        name = repository_name(params)
        _check_encryption(params)
        params.structures("tags")
        if not may(call, name, "push"):
            raise denied(call, name)
        try:
            self._registry.repository(name)
        except NameUnknown:
            info = self._registry.create_repository(name)
            return {"repository": repository_shape(call, info)}
        raise RepositoryAlreadyExists(
            f"The repository with name '{name}' already exists in the registry with id "
            f"'{call.account}'"
        )

    def describe(self, call: Call, params: Params) -> Mapping[str, Any]:
        params.text("registryId")
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
