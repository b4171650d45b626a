"""App Runner's resource tags: TagResource, UntagResource, ListTagsForResource, and the `Tags`
of CreateService and CreateAutoScalingConfiguration.

Tags are kept by the aws room (`aws_resource_tags`), beside Baepo's model rather than in it:
nothing in Baepo reads them. A resource is tagged only while the caller reaches it (a service
by its ARN's name and id, an autoscaling configuration revision by name and revision), with
the rights to change it; listing needs the rights to read it. App Runner's limits hold: at most
50 tags a resource, keys of 1 to 128 characters that do not start with `aws:`, values of at
most 256.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from baepo.auth.rights import ServiceAction
from baepo.aws import Call, Params, ServiceUnavailable, parse_arn
from baepo.aws.apprunner.access import configuration_ref, control_caller, reached
from baepo.aws.apprunner.errors import InvalidRequest
from baepo.aws.tables import ResourceTagRow
from baepo.control import Services
from baepo.store import Database

MAX_TAGS = 50
KEY = r"(?!aws:).+"


class Tags:
    def __init__(self, db: Database, services: Services) -> None:
        self._db = db
        self._services = services

    def tag(self, call: Call, params: Params) -> Mapping[str, Any]:
        tags = read_tags(params)
        if tags is None:
            raise params.error("Tags", None, "not be null")
        self.add(self._resource(call, params, ServiceAction.CHANGE), tags)
        return {}

    def untag(self, call: Call, params: Params) -> Mapping[str, Any]:
        keys = params.texts("TagKeys", max_items=MAX_TAGS)
        if keys is None:
            raise params.error("TagKeys", None, "not be null")
        resource = self._resource(call, params, ServiceAction.CHANGE)
        with self._session() as s, s.begin():
            s.execute(
                sa.delete(ResourceTagRow).where(
                    (ResourceTagRow.resource == resource) & ResourceTagRow.key.in_(keys)
                )
            )
        return {}

    def list(self, call: Call, params: Params) -> Mapping[str, Any]:
        resource = self._resource(call, params, ServiceAction.READ)
        with self._session() as s:
            rows = s.scalars(_of(resource).order_by(ResourceTagRow.key))
            return {"Tags": [{"Key": row.key, "Value": row.value} for row in rows]}

    def add(self, resource: str, tags: dict[str, str]) -> None:
        """Set `tags` on `resource` (a key it has takes the new value)."""
        with self._session() as s, s.begin():
            rows = {row.key: row for row in s.scalars(_of(resource))}
            if len(set(rows) | set(tags)) > MAX_TAGS:
                raise InvalidRequest(f"A resource has at most {MAX_TAGS} tags")
            for key, value in tags.items():
                if key in rows:
                    rows[key].value = value
                else:
                    s.add(ResourceTagRow(resource=resource, key=key, value=value))

    def _resource(self, call: Call, params: Params, action: ServiceAction) -> str:
        """The tagged resource the request's ARN names, if the caller reaches it."""
        text = params.required_text("ResourceArn", min_length=1, max_length=1011)
        parsed = parse_arn(text)
        if parsed is None:
            raise params.error("ResourceArn", text, "be the ARN of an App Runner resource")
        kind = parsed.resource.split("/")[0]
        if kind == "service":
            reached(self._services, call, params, action, "ResourceArn")
        elif kind == "autoscalingconfiguration":
            ref = configuration_ref(params, "ResourceArn")
            who = control_caller(call, action)
            self._services.configurations.describe(ref.name, ref.revision, caller=who)
        else:
            raise params.error("ResourceArn", text, "be the ARN of a service or configuration")
        return resource_key(parsed.resource)

    @contextmanager
    def _session(self) -> Iterator[Session]:
        try:
            with self._db.session() as s:
                yield s
        except SQLAlchemyError as exc:
            raise ServiceUnavailable(f"the state database cannot be used: {exc}") from exc


def resource_key(resource: str) -> str:
    """What a resource's tags are kept under (see `ResourceTagRow`)."""
    return f"apprunner:{resource}"


def read_tags(params: Params) -> dict[str, str] | None:
    """The request's `Tags`, checked (App Runner's bounds), or None when it has none."""
    items = params.structures("Tags", max_items=MAX_TAGS)
    if items is None:
        return None
    tags = {}
    for item in items:
        key = item.required_text("Key", pattern=KEY, min_length=1, max_length=128)
        tags[key] = item.text("Value", max_length=256) or ""
    return tags


def _of(resource: str) -> sa.Select[ResourceTagRow]:
    return sa.select(ResourceTagRow).where(ResourceTagRow.resource == resource)
