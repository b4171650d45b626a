"""Who calls, and which of Baepo's things an App Runner ARN names.

The caller is the access key's API token as the auth room's rights see it; the control room
gets what it reaches (`control_caller`), exactly as Baepo's own API hands it over, so a
service another user owns answers ResourceNotFoundException here as it answers 404 there.

ARNs use the partition `aws-baepo` (`AWS_PARTITION`): App Runner's model allows `aws` and
`aws-<name>` partitions only, and one of Baepo's must never be taken for a real AWS resource.

    arn:aws-baepo:apprunner:us-east-1:123456789012:service/app/5f0c…-…
    arn:aws-baepo:apprunner:us-east-1:123456789012:autoscalingconfiguration/fast/2

A service's id is drawn from its name and creation time (a UUID's 32 hex digits), so an ARN
of an earlier service of the same name, deleted since, finds nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from baepo.auth.rights import Caller as Rights
from baepo.auth.rights import ServiceAction, may_on_services, service_reach
from baepo.aws import AccessDenied, Arn, Call, Params, parse_arn
from baepo.aws.apprunner.errors import ResourceNotFound
from baepo.aws.arns import AWS_PARTITION
from baepo.control import Caller, ConfigurationRef, Services

SERVICE_IDS = uuid.UUID("6d2b7c1e-3f0a-4c59-9a55-0b1f5e3e6a11")
"""The namespace of the UUIDs that name services."""


def control_caller(call: Call, action: ServiceAction) -> Caller:
    """What the call's token reaches, for the control room; AccessDenied when it may not
    `action` services at all (a token limited to repositories)."""
    rights: Rights = call.caller
    if not may_on_services(rights, action):
        raise AccessDenied(
            f"User: {rights.name} is not authorized to perform: apprunner:{call.operation}"
        )
    reach = service_reach(rights)
    return Caller(rights.name, reach.owners, reach.services)


def arn(call: Call, resource: str) -> str:
    return str(Arn("apprunner", call.region, call.account, resource, AWS_PARTITION))


def service_id(name: str, created_at: datetime) -> str:
    """32 hex digits, as App Runner's service ids are."""
    return uuid.uuid5(SERVICE_IDS, f"{name}/{created_at.timestamp():.6f}").hex


def service_resource(name: str, created_at: datetime) -> str:
    """The resource part of the service's ARN."""
    return f"service/{name}/{service_id(name, created_at)}"


def service_arn(call: Call, name: str, created_at: datetime) -> str:
    return arn(call, service_resource(name, created_at))


def operation_id(hex_id: str) -> str:
    """An operation's id as App Runner spells it (a UUID with dashes)."""
    return str(uuid.UUID(hex_id))


def named_service(params: Params, field: str = "ServiceArn") -> tuple[str, str]:
    """The service's name and id (32 hex digits) in the request's ARN."""
    parts = _resource(params, field, "service", "an App Runner service")
    if len(parts) != 3:
        raise params.error(field, params.text(field), "be the ARN of an App Runner service")
    return parts[1], parts[2]


def reached(
    services: Services,
    call: Call,
    params: Params,
    action: ServiceAction,
    field: str = "ServiceArn",
) -> str:
    """The name of the live service the request's ARN (`field`) names, if the caller reaches
    it (ResourceNotFoundException otherwise: also for an earlier service of that name)."""
    name, wanted = named_service(params, field)
    identity = services.identity(name, caller=control_caller(call, action))
    if service_id(name, identity.created_at) != wanted:
        raise ResourceNotFound(f"Service not found: {params.text(field)}")
    return name


def configuration_ref(
    params: Params, field: str = "AutoScalingConfigurationArn"
) -> ConfigurationRef:
    """The revision the request's autoscaling configuration ARN names (the latest when it
    names none)."""
    parts = _resource(params, field, "autoscalingconfiguration", "an autoscaling configuration")
    if not 2 <= len(parts) <= 4:
        raise params.error(field, params.text(field), "be the ARN of an autoscaling configuration")
    return ConfigurationRef.parse(":".join(parts[1:3]), field)


def _resource(params: Params, field: str, kind: str, what: str) -> list[str]:
    """The parts of the resource of the request's App Runner ARN of `kind`."""
    text = params.required_text(field, min_length=1, max_length=1011)
    parsed = parse_arn(text)
    parts = parsed.resource.split("/") if parsed is not None else []
    if parsed is None or parsed.service != "apprunner" or parts[0] != kind:
        raise params.error(field, text, f"be the ARN of {what}")
    return parts
