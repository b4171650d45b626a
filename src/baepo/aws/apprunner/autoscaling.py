"""App Runner's autoscaling configuration operations over Baepo's shared configurations
(`Services.configurations`): Create/Describe/List/DeleteAutoScalingConfiguration.

They are the same revisions `baepo autoscaling` shows, with the same rights: a user's are
theirs, `DefaultConfiguration` (revision 1) is built in and everyone's. An ARN names a revision,
`…:autoscalingconfiguration/NAME/REVISION`; without the revision it names the latest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from baepo.auth.rights import ServiceAction
from baepo.aws import Call, Params
from baepo.aws.apprunner.access import configuration_ref, control_caller
from baepo.aws.apprunner.errors import InvalidRequest
from baepo.aws.apprunner.shapes import configuration_arn
from baepo.aws.apprunner.tags import Tags, read_tags, resource_key
from baepo.aws.paging import Paging
from baepo.control import (
    DEFAULT_NAME,
    AutoScalingConfigurations,
    ConfigurationView,
    Conflict,
)
from baepo.control.autoscaling_configurations import DEFAULT
from baepo.control.configuration_refs import MAX_REVISION

PAGING = Paging("MaxResults", "NextToken", default=100, maximum=100)
NAME = r"[A-Za-z0-9][A-Za-z0-9\-_]{3,31}"


class AutoScaling:
    def __init__(self, configurations: AutoScalingConfigurations, tags: Tags) -> None:
        self._configurations = configurations
        self._tags = tags

    def create(self, call: Call, params: Params) -> Mapping[str, Any]:
        name = params.required_text("AutoScalingConfigurationName", pattern=NAME)
        min_size = params.integer("MinSize", minimum=1, maximum=25)
        max_size = params.integer("MaxSize", minimum=1, maximum=1000)
        concurrency = params.integer("MaxConcurrency", minimum=1, maximum=200)
        tags = read_tags(params)
        who = control_caller(call, ServiceAction.CREATE)
        try:
            view = self._configurations.create(
                name,
                DEFAULT.min_size if min_size is None else min_size,
                DEFAULT.max_size if max_size is None else max_size,
                DEFAULT.max_concurrency if concurrency is None else concurrency,
                caller=who,
            )
        except Conflict as exc:  # the name is another owner's: App Runner's bad request here
            raise InvalidRequest(str(exc)) from exc
        if tags:
            resource = f"autoscalingconfiguration/{view.name}/{view.revision}"
            self._tags.add(resource_key(resource), tags)
        return {"AutoScalingConfiguration": configuration_shape(call, view)}

    def describe(self, call: Call, params: Params) -> Mapping[str, Any]:
        ref = configuration_ref(params)
        who = control_caller(call, ServiceAction.READ)
        view = self._configurations.describe(ref.name, ref.revision, caller=who)
        return {"AutoScalingConfiguration": configuration_shape(call, view)}

    def list(self, call: Call, params: Params) -> Mapping[str, Any]:
        name = params.text("AutoScalingConfigurationName", pattern=NAME)
        latest_only = params.boolean("LatestOnly") or False
        who = control_caller(call, ServiceAction.READ)
        views = self._configurations.list(caller=who, name=name, latest_only=latest_only)
        page, more = PAGING.page(params, views, _in_order)
        summaries = [summary_shape(call, view) for view in page]
        return {"AutoScalingConfigurationSummaryList": summaries, **more}

    def delete(self, call: Call, params: Params) -> Mapping[str, Any]:
        ref = configuration_ref(params)
        every = params.boolean("DeleteAllRevisions") or False
        who = control_caller(call, ServiceAction.CHANGE)
        named = self._configurations.describe(ref.name, ref.revision, caller=who)
        try:
            self._configurations.delete(named.name, None if every else named.revision, caller=who)
        except Conflict as exc:  # in use, or the built-in one: App Runner's bad request
            raise InvalidRequest(str(exc)) from exc
        shape = configuration_shape(call, named)
        return {"AutoScalingConfiguration": {**shape, "Status": "INACTIVE", "Latest": False}}


def _in_order(view: ConfigurationView) -> str:
    """A key in the control room's order: by name, newest revision first."""
    return f"{view.name.lower()}\0{view.name}\0{MAX_REVISION - view.revision:07d}"


def summary_shape(call: Call, view: ConfigurationView) -> dict[str, Any]:
    return {
        "AutoScalingConfigurationArn": configuration_arn(call, view.name, view.revision),
        "AutoScalingConfigurationName": view.name,
        "AutoScalingConfigurationRevision": view.revision,
        "Status": "ACTIVE",
        **({"CreatedAt": view.created_at} if view.created_at else {}),
        "HasAssociatedService": view.in_use > 0,
        "IsDefault": view.name == DEFAULT_NAME,
    }


def configuration_shape(call: Call, view: ConfigurationView) -> dict[str, Any]:
    return {
        **summary_shape(call, view),
        "Latest": view.latest,
        "MaxConcurrency": view.max_concurrency,
        "MinSize": view.min_size,
        "MaxSize": view.max_size,
    }
