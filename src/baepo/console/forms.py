"""What a person types into the console's forms, as the API takes it; what the API refused, by
form field. Pure functions, no I/O.

The console checks almost nothing itself: values go to the API as typed (`"8080"`, `"0.25"`),
and the API's answer (`400 INVALID_SERVICE_SPEC` with every bad field, `409 SERVICE_EXISTS`,
`403 IMAGE_FORBIDDEN`) is shown beside the field it names. The one thing read here is what
the form spells its own way: variables, one `NAME=VALUE` a line, and the size, one choice of
App Runner's CPU and memory pairs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from baepo.console.errors import ApiRefused
from baepo.service_fields import CPU_MEMORY, FIELDS

DEFAULTS = {f.name: f.default for f in FIELDS}
HELP = {f.name: f.help for f in FIELDS}
SERVICE_FORM_FIELDS = (
    "name",
    "image",
    "port",
    "size",
    "env",
    "secrets",
    "min_instances",
    "max_instances",
    "health_check",
)
"""The create form's fields, in page order: a problem the API names goes beside its field."""
BY_API_FIELD = {"cpu": "size", "memory": "size", "custom_domains": "domain"}
"""API fields the form shows under another name."""
BY_CODE = {"SERVICE_EXISTS": "name", "IMAGE_FORBIDDEN": "image"}
"""Refusals that name no field but are about one."""


@dataclass(frozen=True)
class Size:
    cpu: float
    memory: int

    @property
    def value(self) -> str:
        return f"{self.cpu:g}/{self.memory}"

    @property
    def label(self) -> str:
        return f"{self.cpu:g} vCPU · {self.memory / 1024:g} GB"


SIZES = tuple(Size(cpu, memory) for cpu, sizes in CPU_MEMORY.items() for memory in sizes)
DEFAULT_SIZE = Size(float(str(DEFAULTS["cpu"])), int(str(DEFAULTS["memory"])))


@dataclass
class Problems:
    """What is wrong with a form: beside a field (`by_field`), or about the whole form."""

    by_field: dict[str, str] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    def add(self, name: str, reason: str, fields: tuple[str, ...]) -> None:
        if name in fields:
            already = self.by_field.get(name)
            self.by_field[name] = f"{already}; {reason}" if already else reason
        else:
            self.general.append(f"{name}: {reason}" if name else reason)

    def __bool__(self) -> bool:
        return bool(self.by_field or self.general)


def variables(text: str) -> dict[str, str]:
    """`NAME=VALUE` lines (blank lines skipped) as a mapping; ValueError names a bad line.
    Names and values are the API's to judge."""
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        name, equals, value = line.partition("=")
        if not equals or not name.strip():
            raise ValueError(f"line {number} is not NAME=VALUE")
        found[name.strip()] = value
    return found


def names(text: str) -> list[str]:
    """Names typed one after another (repositories, tag filters), split on spaces, commas or
    lines."""
    return [name for name in re.split(r"[\s,]+", text) if name]


def service_request(form: Mapping[str, str]) -> tuple[dict[str, Any], Problems]:
    """The create form as the body of `POST /api/v1/services`, and what the form itself
    could not read (the API is not asked then)."""
    problems = Problems()
    body: dict[str, Any] = {
        "name": form.get("name", "").strip(),
        "image": form.get("image", "").strip(),
        "port": form.get("port", "").strip(),
        "min_instances": form.get("min_instances", "").strip(),
        "max_instances": form.get("max_instances", "").strip(),
    }
    for name in ("env", "secrets"):
        try:
            body[name] = variables(form.get(name, ""))
        except ValueError as exc:
            problems.add(name, str(exc), SERVICE_FORM_FIELDS)
    size = next((s for s in SIZES if s.value == form.get("size")), None)
    if size is None:
        problems.add("size", "choose one of the sizes", SERVICE_FORM_FIELDS)
    else:
        body["cpu"], body["memory"] = size.cpu, size.memory
    protocol = form.get("health_check_protocol", "tcp")
    path = form.get("health_check_path", "").strip()
    body["health_check"] = {"protocol": protocol, **({"path": path} if path else {})}
    return body, problems


def refused_fields(
    refused: ApiRefused,
    fields: tuple[str, ...],
    *,
    prefix: str = "",
    by_code: Mapping[str, str] = BY_CODE,
) -> Problems:
    """The API's refusal by form field (`fields`); what names none of them is general. A
    form whose fields are the API's after a `prefix` (`token_name`) gives it; `by_code` names
    the field of refusals that name none."""
    problems = Problems()
    for api_field, reason in refused.fields:
        top = api_field.partition(".")[0]
        problems.add(prefix + BY_API_FIELD.get(top, top), reason, fields)
    if not refused.fields:
        named = by_code.get(refused.code)
        problems.add(prefix + named if named else "", refused.message, fields)
    return problems


def variable_lines(variables: Mapping[str, str]) -> str:
    """A mapping as the form's text area shows it: one `NAME=VALUE` a line."""
    return "".join(f"{name}={value}\n" for name, value in variables.items())


def config_values(config: Mapping[str, Any]) -> dict[str, str]:
    """A service's configuration (as the API shows it: secrets masked) as the edit form's
    values. A masked secret sent back keeps its value (the API's rule)."""
    check = config.get("health_check") or {}
    protocol = str(check.get("protocol", "tcp"))
    return {
        "image": str(config["image"]),
        "port": str(config["port"]),
        "size": Size(float(config["cpu"]), int(config["memory"])).value,
        "min_instances": str(config["min_instances"]),
        "max_instances": str(config["max_instances"]),
        "env": variable_lines(config.get("env") or {}),
        "secrets": variable_lines(config.get("secrets") or {}),
        "health_check_protocol": protocol,
        "health_check_path": str(check.get("path", "")) if protocol == "http" else "",
    }


def update_request(
    form: Mapping[str, str], current: Mapping[str, str]
) -> tuple[dict[str, Any], Problems]:
    """The edit form as the body of `PATCH /api/v1/services/{name}`: the fields whose value
    differs from `current` (the form's values as they were), read as the create form's, so
    that a text area's line endings or a blank line change nothing. Only what changed is
    sent: a service whose bounds come from an autoscaling configuration may still change
    its image."""
    typed = {name: form.get(name, "") for name in current}
    body, problems = service_request(typed)
    before, _ = service_request(current)
    changed = {key: value for key, value in body.items() if value != before.get(key)}
    changed.pop("name", None)
    return changed, problems
