"""botocore's service models as the judge of Baepo's AWS answers.

`check_answer` is hooked into every botocore client the AWS tests make (world.py): each
answer Baepo gives is checked against the operation's shape in botocore's own model (every
member one the shape has, of its type, enums in their sets, patterns and bounds kept, required
members present), and each error code is one the operation declares or one of the protocol's
own. botocore's parser has then accepted the same bytes, or the call would have failed.
"""

from __future__ import annotations

import json
import re
from typing import Any

import botocore.session  # type: ignore[import-untyped]  # botocore ships no type information

PROTOCOL_ERRORS = {
    "AccessDeniedException",
    "IncompleteSignatureException",
    "InvalidSignatureException",
    "MissingAuthenticationTokenException",
    "RequestEntityTooLargeException",
    "SerializationException",
    "ServiceUnavailableException",
    "UnknownOperationException",
    "UnrecognizedClientException",
}

UNKEPT_PATTERNS = {
    "ImageIdentifier": "App Runner's names AWS's own registries' hosts (ECR, public.ecr.aws); "
    "Baepo's services run images of Baepo's registry, named with its host",
    "ServiceId": "the model asks for 32 characters and a 36-character UUID pattern at once; "
    "App Runner sends 32 hex digits, as Baepo does",
}
"""Shapes whose pattern no answer can keep (App Runner's), with the reason: their bounds and
types are still checked."""


def service_model(service: str) -> Any:
    return botocore.session.get_session().get_service_model(service)


def check_answer(http_response: Any, model: Any, **_: Any) -> None:
    """botocore's `after-call` hook: the raw answer agrees with the operation's model."""
    body = json.loads(http_response.content or b"{}")
    if http_response.status_code >= 300:
        declared = {shape.name for shape in model.error_shapes}
        assert body["__type"] in declared | PROTOCOL_ERRORS, (
            f"{model.name} answered {body['__type']}, which it does not declare"
        )
        assert http_response.headers["x-amzn-ErrorType"] == body["__type"]
        return
    problems = shape_problems(model.output_shape, body, model.name)
    assert not problems, f"{model.name} answered outside its model:\n" + "\n".join(problems)


def shape_problems(shape: Any, value: Any, where: str) -> list[str]:
    """What in `value` (as JSON decoded it) the shape does not allow."""
    if shape is None:
        return [] if value in ({}, None) else [f"{where}: the operation returns nothing"]
    kind = shape.type_name
    if kind == "structure":
        return _structure(shape, value, where)
    if kind == "list":
        if not isinstance(value, list):
            return [f"{where}: {value!r} is not a list"]
        return _bounds(shape, len(value), where) + [
            p
            for i, item in enumerate(value)
            for p in shape_problems(shape.member, item, f"{where}[{i}]")
        ]
    if kind == "map":
        if not isinstance(value, dict):
            return [f"{where}: {value!r} is not a map"]
        return [p for k, v in value.items() for p in shape_problems(shape.value, v, f"{where}.{k}")]
    if kind == "string":
        return _string(shape, value, where)
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            return [f"{where}: {value!r} is not an integer"]
        return _range(shape, value, where)
    if kind == "boolean":
        return [] if isinstance(value, bool) else [f"{where}: {value!r} is not a boolean"]
    if kind == "timestamp":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{where}: {value!r} is not epoch seconds"]
    if kind in ("double", "float"):
        return [] if isinstance(value, int | float) else [f"{where}: {value!r} is not a number"]
    if kind == "blob":
        return [] if isinstance(value, str) else [f"{where}: {value!r} is not base64 text"]
    return [f"{where}: unchecked shape type {kind}"]


def _structure(shape: Any, value: Any, where: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{where}: {value!r} is not a structure"]
    problems = [f"{where}.{name}: not in the model" for name in value if name not in shape.members]
    problems += [
        f"{where}.{name}: required but missing"
        for name in shape.required_members
        if name not in value
    ]
    for name, member in shape.members.items():
        if name in value and value[name] is not None:
            problems += shape_problems(member, value[name], f"{where}.{name}")
    return problems


def _string(shape: Any, value: Any, where: str) -> list[str]:
    if not isinstance(value, str):
        return [f"{where}: {value!r} is not a string"]
    problems = _bounds(shape, len(value), where)
    if shape.enum and value not in shape.enum:
        problems.append(f"{where}: {value!r} is not one of {shape.enum}")
    pattern = None if shape.name in UNKEPT_PATTERNS else shape.metadata.get("pattern")
    if pattern and re.search(pattern, value) is None:
        problems.append(f"{where}: {value!r} does not match {pattern}")
    return problems


def _bounds(shape: Any, length: int, where: str) -> list[str]:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if (low is not None and length < low) or (high is not None and length > high):
        return [f"{where}: length {length} is outside [{low}, {high}]"]
    return []


def _range(shape: Any, value: int, where: str) -> list[str]:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if (low is not None and value < low) or (high is not None and value > high):
        return [f"{where}: {value} is outside [{low}, {high}]"]
    return []
