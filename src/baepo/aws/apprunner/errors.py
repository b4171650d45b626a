"""App Runner's own error codes (botocore's App Runner model declares each), and how the
control room's errors read as App Runner's.

    AwsError
    ├── InvalidRequest            InvalidRequestException: bad input, a spec Baepo refuses
    ├── InternalServiceError      InternalServiceErrorException 500: a bug
    ├── ResourceNotFound          ResourceNotFoundException (also: one you may not see)
    ├── InvalidState              InvalidStateException: not possible in the service's status,
    │                             or another operation of the service is in flight
    └── ServiceQuotaExceeded      ServiceQuotaExceededException: the owner's quota is used up

`translate` maps the control room's errors once; an unavailable database is a 503
(ServiceUnavailableException, which botocore retries).
"""

from __future__ import annotations

from baepo.aws.errors import AwsError, ServiceUnavailable
from baepo.control import (
    ConfigurationNotFound,
    Conflict,
    ControlUnavailable,
    InvalidAutoScalingConfiguration,
    InvalidServiceSpec,
    OperationNotFound,
    QuotaExceeded,
    RevisionNotFound,
    ServiceExists,
    ServiceNotFound,
)


class InvalidRequest(AwsError):
    code = "InvalidRequestException"


class InternalServiceError(AwsError):
    code, status = "InternalServiceErrorException", 500


class ResourceNotFound(AwsError):
    code = "ResourceNotFoundException"


class InvalidState(AwsError):
    code = "InvalidStateException"


class ServiceQuotaExceeded(AwsError):
    code = "ServiceQuotaExceededException"


def translate(exc: Exception) -> AwsError | None:
    """App Runner's error for a control room's, or None (a bug)."""
    missing = ServiceNotFound | OperationNotFound | RevisionNotFound | ConfigurationNotFound
    if isinstance(exc, missing):
        return ResourceNotFound(str(exc))
    if isinstance(exc, ServiceExists):
        return InvalidRequest(f"Service with the provided name already exists: {exc}")
    if isinstance(exc, InvalidServiceSpec | InvalidAutoScalingConfiguration):
        return InvalidRequest(str(exc))
    if isinstance(exc, Conflict):
        return InvalidState(str(exc))
    if isinstance(exc, QuotaExceeded):
        return ServiceQuotaExceeded(str(exc))
    if isinstance(exc, ControlUnavailable):
        return ServiceUnavailable(str(exc))
    return None
