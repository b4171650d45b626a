"""Errors of the AWS endpoint, as AWS's JSON protocols carry them: an HTTP status, a JSON body
`{"__type": "<code>", "message": "…"}` and the header `x-amzn-ErrorType: <code>`, which botocore
turns into a `ClientError` whose `response["Error"]["Code"]` is the code.

    AwsError                          code, status (400 unless said)
    ├── MissingAuthenticationToken    MissingAuthenticationTokenException: no signature at all
    ├── IncompleteSignature           IncompleteSignatureException: a signature that is not
    │                                 well formed (a part missing, no date, host not signed)
    ├── InvalidSignature              InvalidSignatureException: a signature that does not
    │                                 match, a date out of the 15-minute window, a wrong scope
    ├── UnrecognizedClient            UnrecognizedClientException: no such access key (never
    │                                 made, revoked, or its API token deleted)
    ├── AccessDenied                  AccessDeniedException: the key's token may not do this
    ├── UnknownOperation              UnknownOperationException: no such X-Amz-Target
    ├── SerializationError            SerializationException: a body that is not a JSON object
    ├── RequestTooLarge               RequestEntityTooLargeException 413
    ├── ServiceUnavailable            ServiceUnavailableException 503: the state database
    │                                 cannot be used now (botocore retries a 503)
    └── (a service's own)             each service module adds its codes as subclasses:
                                      ECR's RepositoryNotFoundException, App Runner's
                                      ResourceNotFoundException, …

The signature errors' codes and messages are AWS's own (what botocore users already search for).
"""

from __future__ import annotations

from typing import ClassVar


class AwsError(Exception):
    code: ClassVar[str] = "InternalFailure"
    status: ClassVar[int] = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MissingAuthenticationToken(AwsError):
    code = "MissingAuthenticationTokenException"


class IncompleteSignature(AwsError):
    code = "IncompleteSignatureException"


class InvalidSignature(AwsError):
    code = "InvalidSignatureException"


class UnrecognizedClient(AwsError):
    code = "UnrecognizedClientException"


class AccessDenied(AwsError):
    code = "AccessDeniedException"


class UnknownOperation(AwsError):
    code = "UnknownOperationException"


class SerializationError(AwsError):
    code = "SerializationException"


class RequestTooLarge(AwsError):
    code, status = "RequestEntityTooLargeException", 413


class ServiceUnavailable(AwsError):
    code, status = "ServiceUnavailableException", 503
