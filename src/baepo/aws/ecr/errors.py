"""ECR's own error codes (botocore's ECR model declares each), and how the registry room's
errors read as ECR's.

    AwsError
    ├── InvalidParameter              InvalidParameterException: bad input
    ├── Validation                    ValidationException: a lifecycle policy ECR would refuse
    ├── ServerError                   ServerException 500: a bug
    ├── RepositoryNotFound            RepositoryNotFoundException (also: one you may not see)
    ├── RepositoryAlreadyExists       RepositoryAlreadyExistsException
    ├── RepositoryNotEmpty            RepositoryNotEmptyException (delete without force)
    ├── ImageNotFound                 ImageNotFoundException
    ├── LifecyclePolicyNotFound       LifecyclePolicyNotFoundException
    └── LifecyclePolicyPreviewNotFound
                                      LifecyclePolicyPreviewNotFoundException

`translate` maps the registry's errors once: an unknown repository, manifest or lifecycle
policy is ECR's not-found, an invalid name or policy its InvalidParameterException, an
unavailable database or storage a 503 (ServiceUnavailableException, which botocore retries).
"""

from __future__ import annotations

from baepo.aws.errors import AwsError, ServiceUnavailable
from baepo.registry import (
    LifecyclePolicyInvalid,
    LifecyclePolicyUnknown,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    RegistryUnavailable,
)


class InvalidParameter(AwsError):
    code = "InvalidParameterException"


class Validation(AwsError):
    code = "ValidationException"


class ServerError(AwsError):
    code, status = "ServerException", 500


class RepositoryNotFound(AwsError):
    code = "RepositoryNotFoundException"


class RepositoryAlreadyExists(AwsError):
    code = "RepositoryAlreadyExistsException"


class RepositoryNotEmpty(AwsError):
    code = "RepositoryNotEmptyException"


class ImageNotFound(AwsError):
    code = "ImageNotFoundException"


class LifecyclePolicyNotFound(AwsError):
    code = "LifecyclePolicyNotFoundException"


class LifecyclePolicyPreviewNotFound(AwsError):
    code = "LifecyclePolicyPreviewNotFoundException"


def translate(exc: Exception) -> AwsError | None:
    """ECR's error for a registry room's, or None (a bug)."""
    if isinstance(exc, NameUnknown):
        name = exc.detail.get("name") if isinstance(exc.detail, dict) else None
        return RepositoryNotFound(f"The repository with name '{name}' does not exist")
    if isinstance(exc, ManifestUnknown):
        return ImageNotFound("The image does not exist within the repository")
    if isinstance(exc, NameInvalid):
        return InvalidParameter(f"Invalid parameter at 'repositoryName': {exc.message}")
    if isinstance(exc, LifecyclePolicyInvalid):
        return InvalidParameter(
            f"Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: "
            f"'{exc.message}'"
        )
    if isinstance(exc, LifecyclePolicyUnknown):
        return LifecyclePolicyNotFound("Lifecycle policy does not exist for the repository")
    if isinstance(exc, RegistryUnavailable):
        return ServiceUnavailable(exc.message)
    return None
