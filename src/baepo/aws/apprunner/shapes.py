"""App Runner's shapes for Baepo's views: a `Service`, its summary, an `OperationSummary`.

A service's configuration is Baepo's one spec (`ServiceView.config`, secrets masked), spelled
as App Runner spells it:

    image, port, env, command     SourceConfiguration.ImageRepository (ImageConfiguration)
    auto_deploy                   SourceConfiguration.AutoDeploymentsEnabled
    cpu, memory                   InstanceConfiguration ("1024", "2048": CPU units and MB)
    health_check                  HealthCheckConfiguration (TCP or HTTP)
    autoscaling_configuration     AutoScalingConfigurationSummary (DefaultConfiguration when
                                  the service sets its own bounds)

Secrets are not shown (App Runner's RuntimeEnvironmentSecrets are ARNs of secrets kept
elsewhere; Baepo keeps the values). The network is always App Runner's default: public
ingress, default egress, IPv4. A rollback (Baepo's own operation kind) reads as
UPDATE_SERVICE, the App Runner type that changes image and configuration together.
"""

from __future__ import annotations

import shlex
from typing import Any

from baepo.aws import Call
from baepo.aws.apprunner.access import arn, operation_id, service_arn, service_id
from baepo.control import DEFAULT_NAME, ConfigurationRef, ImageName, OperationView, ServiceView
from baepo.control.images import BadReference, RegistryLink

OPERATION_TYPES = {"ROLLBACK_SERVICE": "UPDATE_SERVICE"}
"""Baepo's operation kinds App Runner has no name for; the others are App Runner's own."""


def service_shape(call: Call, view: ServiceView, registry: RegistryLink) -> dict[str, Any]:
    config = view.config
    return {
        **summary_shape(call, view),
        "SourceConfiguration": {
            "ImageRepository": {
                "ImageIdentifier": config["image"],
                "ImageConfiguration": _image_configuration(config),
                "ImageRepositoryType": _repository_type(config["image"], registry),
            },
            "AutoDeploymentsEnabled": config["auto_deploy"],
        },
        "InstanceConfiguration": {
            "Cpu": str(round(config["cpu"] * 1024)),
            "Memory": str(config["memory"]),
        },
        "HealthCheckConfiguration": _health_check(config["health_check"]),
        "AutoScalingConfigurationSummary": _autoscaling(call, config["autoscaling_configuration"]),
        "NetworkConfiguration": {
            "EgressConfiguration": {"EgressType": "DEFAULT"},
            "IngressConfiguration": {"IsPubliclyAccessible": True},
            "IpAddressType": "IPV4",
        },
    }


def summary_shape(call: Call, view: ServiceView) -> dict[str, Any]:
    return {
        "ServiceName": view.name,
        "ServiceId": service_id(view.name, view.created_at),
        "ServiceArn": service_arn(call, view.name, view.created_at),
        "ServiceUrl": view.url.partition("://")[2],
        "CreatedAt": view.created_at,
        "UpdatedAt": view.updated_at,
        "Status": view.status,
    }


def operation_shape(call: Call, op: OperationView, target: str) -> dict[str, Any]:
    started = op.started_at or op.created_at
    return {
        "Id": operation_id(op.id),
        "Type": OPERATION_TYPES.get(op.kind, op.kind),
        "Status": op.status,
        "TargetArn": target,
        "StartedAt": started,
        **({"EndedAt": op.ended_at} if op.ended_at else {}),
        "UpdatedAt": op.ended_at or started,
    }


def _image_configuration(config: dict[str, Any]) -> dict[str, Any]:
    shown: dict[str, Any] = {"Port": str(config["port"])}
    if config["env"]:
        shown["RuntimeEnvironmentVariables"] = config["env"]
    if config["command"]:
        shown["StartCommand"] = shlex.join(config["command"])
    return shown


def _repository_type(image: str, registry: RegistryLink) -> str:
    """ECR for an image of Baepo's own registry (it speaks ECR's API), ECR_PUBLIC otherwise."""
    try:
        return "ECR" if registry.owns(ImageName.parse(image)) else "ECR_PUBLIC"
    except BadReference:
        return "ECR_PUBLIC"


def _health_check(check: dict[str, Any]) -> dict[str, Any]:
    return {
        "Protocol": check["protocol"].upper(),
        "Path": check["path"],
        "Interval": check["interval"],
        "Timeout": check["timeout"],
        "HealthyThreshold": check["healthy_threshold"],
        "UnhealthyThreshold": check["unhealthy_threshold"],
    }


def _autoscaling(call: Call, pinned: str | None) -> dict[str, Any]:
    ref = ConfigurationRef.parse(pinned) if pinned else ConfigurationRef(DEFAULT_NAME, 1)
    revision = ref.revision or 1
    return {
        "AutoScalingConfigurationArn": configuration_arn(call, ref.name, revision),
        "AutoScalingConfigurationName": ref.name,
        "AutoScalingConfigurationRevision": revision,
    }


def configuration_arn(call: Call, name: str, revision: int) -> str:
    return arn(call, f"autoscalingconfiguration/{name}/{revision}")
