"""App Runner's service operations over Baepo's services room: CreateService, DescribeService,
UpdateService, DeleteService, ListServices, StartDeployment, PauseService, ResumeService,
ListOperations.

Each is the `Services` facade's call of the same meaning, with the caller's reach and rights
(`access.control_caller`) and the image check Baepo's own API makes (a service runs only images
its creator may pull). Every change is one of Baepo's operations, whose id is the answer's
`OperationId`; the reconciler carries it out, and `DescribeService` shows the status move from
OPERATION_IN_PROGRESS to RUNNING, as App Runner's does.

What App Runner has and Baepo does not is refused plainly (InvalidRequestException): source
code repositories, secrets kept in another service, KMS keys, VPC egress, private ingress.
An instance role and an access role are accepted and have no use (Baepo's registry needs none).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from baepo.auth.rights import Caller as Rights
from baepo.auth.rights import ServiceAction
from baepo.aws import AccessDenied, Call, Params
from baepo.aws.apprunner.access import (
    configuration_ref,
    control_caller,
    operation_id,
    reached,
    service_arn,
    service_resource,
)
from baepo.aws.apprunner.errors import InvalidRequest
from baepo.aws.apprunner.shapes import operation_shape, service_shape, summary_shape
from baepo.aws.apprunner.tags import Tags, read_tags, resource_key
from baepo.aws.paging import Paging
from baepo.control import Conflict, OperationView, QuotaExceeded, Services, SpecChange

MayRun = Callable[[Rights, str], str | None]
"""Why a caller may not run an image, or None (the API's `ImageCheck.refusal`)."""

PAGING = Paging("MaxResults", "NextToken", default=20, maximum=20)
NEVER = 1e11
"""Seconds since the epoch beyond any operation's creation (the year 5138)."""
SERVICE_NAME = r"[A-Za-z0-9][A-Za-z0-9-_]{3,39}"


class ServiceOperations:
    def __init__(self, services: Services, may_run: MayRun, tags: Tags) -> None:
        self._services = services
        self._may_run = may_run
        self._tags = tags

    def create(self, call: Call, params: Params) -> Mapping[str, Any]:
        name = params.required_text("ServiceName", pattern=SERVICE_NAME)
        if not params.has("SourceConfiguration"):
            raise params.error("SourceConfiguration", None, "not be null")
        who = control_caller(call, ServiceAction.CREATE)
        values = {"name": name, **self._spec_values(call, params)}
        tags = read_tags(params)
        view, op = self._services.create(SpecChange(values), caller=who)
        if tags:
            self._tags.add(resource_key(service_resource(view.name, view.created_at)), tags)
        return {
            "Service": service_shape(call, view, self._services.registry),
            "OperationId": _id(op),
        }

    def describe(self, call: Call, params: Params) -> Mapping[str, Any]:
        name = reached(self._services, call, params, ServiceAction.READ)
        view = self._services.describe(name, caller=control_caller(call, ServiceAction.READ))
        return {"Service": service_shape(call, view, self._services.registry)}

    def update(self, call: Call, params: Params) -> Mapping[str, Any]:
        name = reached(self._services, call, params, ServiceAction.CHANGE)
        who = control_caller(call, ServiceAction.CHANGE)
        change = SpecChange(self._spec_values(call, params))
        try:
            op = self._services.update(name, change, caller=who)
        except QuotaExceeded as exc:  # more instances than allowed: UpdateService's bad request
            raise InvalidRequest(str(exc)) from exc
        return self._answer(call, name, op)

    def delete(self, call: Call, params: Params) -> Mapping[str, Any]:
        name = reached(self._services, call, params, ServiceAction.CHANGE)
        who = control_caller(call, ServiceAction.CHANGE)
        before = self._services.describe(name, caller=who)
        op = self._services.delete(name, caller=who)
        shown = service_shape(call, before, self._services.registry)
        return {"Service": {**shown, "Status": "OPERATION_IN_PROGRESS"}, "OperationId": _id(op)}

    def list(self, call: Call, params: Params) -> Mapping[str, Any]:
        views = self._services.list(caller=control_caller(call, ServiceAction.READ))
        page, more = PAGING.page(params, views, lambda view: view.name)
        return {"ServiceSummaryList": [summary_shape(call, view) for view in page], **more}

    def start_deployment(self, call: Call, params: Params) -> Mapping[str, Any]:
        name = reached(self._services, call, params, ServiceAction.DEPLOY)
        try:
            op = self._services.deploy(name, caller=control_caller(call, ServiceAction.DEPLOY))
        except Conflict as exc:  # paused or being deleted: App Runner's bad request here
            raise InvalidRequest(str(exc)) from exc
        return {"OperationId": _id(op)}

    def pause(self, call: Call, params: Params) -> Mapping[str, Any]:
        name = reached(self._services, call, params, ServiceAction.CHANGE)
        op = self._services.pause(name, caller=control_caller(call, ServiceAction.CHANGE))
        return self._answer(call, name, op)

    def resume(self, call: Call, params: Params) -> Mapping[str, Any]:
        name = reached(self._services, call, params, ServiceAction.CHANGE)
        op = self._services.resume(name, caller=control_caller(call, ServiceAction.CHANGE))
        return self._answer(call, name, op)

    def list_operations(self, call: Call, params: Params) -> Mapping[str, Any]:
        name = reached(self._services, call, params, ServiceAction.READ)
        who = control_caller(call, ServiceAction.READ)
        identity = self._services.identity(name, caller=who)
        target = service_arn(call, name, identity.created_at)
        operations = self._services.operations(name, caller=who)
        page, more = PAGING.page(params, operations, _newest_first)
        return {"OperationSummaryList": [operation_shape(call, op, target) for op in page], **more}

    def _answer(self, call: Call, name: str, op: OperationView) -> Mapping[str, Any]:
        view = self._services.describe(name, caller=control_caller(call, ServiceAction.READ))
        return {
            "Service": service_shape(call, view, self._services.registry),
            "OperationId": _id(op),
        }

    def _spec_values(self, call: Call, params: Params) -> dict[str, Any]:
        """The request's configuration as Baepo's spec fields (those it names)."""
        values: dict[str, Any] = {}
        source = params.structure("SourceConfiguration")
        if source is not None:
            values.update(self._source(call, source))
        instance = params.structure("InstanceConfiguration")
        if instance is not None:
            values.update(_instance(instance))
        health = params.structure("HealthCheckConfiguration")
        if health is not None:
            values["health_check"] = _health_check(health)
        if params.has("AutoScalingConfigurationArn"):
            values["autoscaling_configuration"] = str(configuration_ref(params))
        _refuse_elsewhere(params)
        return values

    def _source(self, call: Call, source: Params) -> dict[str, Any]:
        if source.has("CodeRepository"):
            raise source.error("CodeRepository", "…", "be absent: Baepo runs images only")
        values: dict[str, Any] = {}
        auto = source.boolean("AutoDeploymentsEnabled")
        if auto is not None:
            values["auto_deploy"] = auto
        image = source.structure("ImageRepository")
        if image is None:
            return values
        ref = image.required_text("ImageIdentifier", min_length=1, max_length=1024)
        image.choice("ImageRepositoryType", ("ECR", "ECR_PUBLIC"))
        refusal = self._may_run(call.caller, ref)
        if refusal is not None:
            raise AccessDenied(refusal)
        values["image"] = ref
        configuration = image.structure("ImageConfiguration")
        if configuration is not None:
            values.update(_image_configuration(configuration))
        return values


def _image_configuration(configuration: Params) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if configuration.has("RuntimeEnvironmentSecrets"):
        raise configuration.error(
            "RuntimeEnvironmentSecrets",
            "…",
            "be absent: Baepo keeps secrets' values itself (baepo services update --secret)",
        )
    port = configuration.text("Port", min_length=0, max_length=51)
    if port is not None:
        values["port"] = port
    env = configuration.text_map("RuntimeEnvironmentVariables")
    if env is not None:
        values["env"] = env
    command = configuration.text("StartCommand", pattern=r"[^\x0a\x0d]+")
    if command is not None:
        values["command"] = command
    return values


def _instance(instance: Params) -> dict[str, Any]:
    instance.text("InstanceRoleArn", max_length=1224)
    values: dict[str, Any] = {}
    cpu = instance.text("Cpu", min_length=3, max_length=9)
    if cpu is not None:
        values["cpu"] = cpu
    memory = instance.text("Memory", min_length=3, max_length=6)
    if memory is not None:
        values["memory"] = memory
    return values


def _health_check(health: Params) -> dict[str, Any]:
    values: dict[str, Any] = {}
    protocol = health.choice("Protocol", ("TCP", "HTTP"))
    if protocol is not None:
        values["protocol"] = protocol.lower()
    path = health.text("Path", min_length=1)
    if path is not None:
        values["path"] = path
    for member, field in (
        ("Interval", "interval"),
        ("Timeout", "timeout"),
        ("HealthyThreshold", "healthy_threshold"),
        ("UnhealthyThreshold", "unhealthy_threshold"),
    ):
        value = health.integer(member, minimum=1, maximum=20)
        if value is not None:
            values[field] = value
    return values


def _refuse_elsewhere(params: Params) -> None:
    """What would need a second model beside Baepo's: refused, so nothing is silently off."""
    if params.has("EncryptionConfiguration"):
        raise params.error("EncryptionConfiguration", "…", "be absent: Baepo has no KMS keys")
    network = params.structure("NetworkConfiguration")
    if network is None:
        return
    egress = network.structure("EgressConfiguration")
    if egress is not None and egress.choice("EgressType", ("DEFAULT", "VPC")) == "VPC":
        raise egress.error("EgressType", "VPC", "be DEFAULT: Baepo has no VPC connectors")
    ingress = network.structure("IngressConfiguration")
    if ingress is not None and ingress.boolean("IsPubliclyAccessible") is False:
        raise ingress.error("IsPubliclyAccessible", False, "be true: every service is public")
    network.choice("IpAddressType", ("IPV4", "DUAL_STACK"))


def _newest_first(op: OperationView) -> str:
    """A key that orders operations newest first (and stays put when newer ones come)."""
    return f"{NEVER - op.created_at.timestamp():020.6f}/{op.id}"


def _id(op: OperationView) -> str:
    return operation_id(op.id)
