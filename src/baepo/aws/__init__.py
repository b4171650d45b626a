"""The aws room: AWS's APIs at Baepo's own endpoint, so that the aws CLI, boto3 and Terraform
move to Baepo with a change of `--endpoint-url` (docs/aws.md).

Public surface for the composition root and the services built on it:

    AwsEndpoint(services, keys, clock, account)   the ASGI app for `POST /` with X-Amz-Target
    JsonService(signing_name, target_prefix, …)   one AWS service: its operations by name
    Call, Params, Handler                         what an operation handler gets, and is
    AwsError (+ the protocol's own errors)        what a handler raises (errors.py)
    account_id, Arn, parse_arn                    the installation's account and ARNs

Module map:
    pure        sigv4 (signature checks), params (input checks), arns
    protocol    the JSON protocols' dispatcher, error rendering, signature gate
    services    ecr/ (the registry room, as ECR); apprunner/ (the control room, as App Runner)
    errors      the error tree and its codes

The room sits above the domain rooms (auth, registry, control) and below the HTTP edge (`api`
routes `POST /` with an `X-Amz-Target` header here); it never imports `api`.
"""

from baepo.aws.arns import Arn, account_id
from baepo.aws.arns import parse as parse_arn
from baepo.aws.errors import (
    AccessDenied,
    AwsError,
    IncompleteSignature,
    InvalidSignature,
    MissingAuthenticationToken,
    ServiceUnavailable,
    UnrecognizedClient,
)
from baepo.aws.params import Params
from baepo.aws.protocol import AwsEndpoint, Call, Handler, JsonService, SigningKeys

__all__ = [
    "AccessDenied",
    "Arn",
    "AwsEndpoint",
    "AwsError",
    "Call",
    "Handler",
    "IncompleteSignature",
    "InvalidSignature",
    "JsonService",
    "MissingAuthenticationToken",
    "Params",
    "ServiceUnavailable",
    "SigningKeys",
    "UnrecognizedClient",
    "account_id",
    "parse_arn",
]
