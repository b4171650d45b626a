"""ECR (Amazon Elastic Container Registry) over Baepo's registry room, at the AWS endpoint.

    ecr_service(registry, key_password, lifecycle)   the JsonService for `AwsEndpoint`

Target prefix `AmazonEC2ContainerRegistry_V20150921`, awsJson1_1, signing name `ecr`. Shapes,
enums and error codes are botocore's ECR model's (tests/aws check every answer against it).
Repositories are the registry's own, with its rights: a user's namespace (`alice/...`) is
theirs, an admin's token may do everything (docs/aws.md lists what differs from AWS).

    login.py          GetAuthorizationToken
    repositories.py   CreateRepository, DescribeRepositories, DeleteRepository,
                      PutImageTagMutability
    images.py         ListImages, DescribeImages, BatchGetImage, BatchDeleteImage
    lifecycle.py      Put/Get/DeleteLifecyclePolicy, Start/GetLifecyclePolicyPreview
    access.py         names, ARNs, rights; errors.py  ECR's error codes
"""

from __future__ import annotations

from baepo.aws import JsonService
from baepo.aws.ecr.errors import InvalidParameter, ServerError, translate
from baepo.aws.ecr.images import Images
from baepo.aws.ecr.lifecycle import Lifecycle
from baepo.aws.ecr.login import KeyPassword, Login
from baepo.aws.ecr.repositories import Repositories
from baepo.registry import LifecyclePolicies, Registry

TARGET_PREFIX = "AmazonEC2ContainerRegistry_V20150921"


def ecr_service(
    registry: Registry, key_password: KeyPassword, lifecycle: LifecyclePolicies
) -> JsonService:
    """ECR over `registry`; `key_password` makes registry passwords for access keys
    (`Auth.key_password`), `lifecycle` previews policies (it knows which images are in use)."""
    login = Login(key_password)
    repositories = Repositories(registry)
    images = Images(registry)
    policies = Lifecycle(registry, lifecycle)
    operations = {
        "GetAuthorizationToken": login.get_authorization_token,
        "CreateRepository": repositories.create,
        "DescribeRepositories": repositories.describe,
        "DeleteRepository": repositories.delete,
        "PutImageTagMutability": repositories.put_tag_mutability,
        "ListImages": images.list_ids,
        "DescribeImages": images.describe,
        "BatchGetImage": images.batch_get,
        "BatchDeleteImage": images.batch_delete,
        "PutLifecyclePolicy": policies.put,
        "GetLifecyclePolicy": policies.get,
        "DeleteLifecyclePolicy": policies.delete,
        "StartLifecyclePolicyPreview": policies.start_preview,
        "GetLifecyclePolicyPreview": policies.get_preview,
    }
    return JsonService(
        "ecr", TARGET_PREFIX, "1.1", operations, InvalidParameter, ServerError, translate
    )


__all__ = ["TARGET_PREFIX", "KeyPassword", "ecr_service"]
