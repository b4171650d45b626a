"""How room errors become HTTP responses, in one place.

Every API error is `{"error": {"code": "<STABLE_CODE>", "message": "<one line>"}}`: a room's
error by the table `ROOM_ERRORS` (the most specific class listed wins), the registry's with the
status and code it carries, the API's own (`ApiError`) as raised, a request that does not match
its model `422 INVALID_REQUEST`. Bad input is a room error of its own type (`InvalidServiceSpec`,
`InvalidName`), never a bare `ValueError`: anything not listed is a bug, `500 INTERNAL`.
Bad input also names each bad field in `"fields": [{"field", "message"}]` (a service spec's
problems, a request's validation errors): a form shows each problem by its field.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from baepo.auth import (
    AccessDenied,
    AuthenticationRequired,
    AuthUnavailable,
    InvalidName,
    NotFound,
    TooManyAttempts,
    UserExists,
)
from baepo.control import (
    ConfigurationInUse,
    ConfigurationNotFound,
    Conflict,
    ControlUnavailable,
    InvalidAutoScalingConfiguration,
    InvalidLogQuery,
    InvalidServiceSpec,
    InvalidServiceState,
    OperationInProgress,
    OperationNotFound,
    QuotaExceeded,
    RevisionNotFound,
    SecretsUnreadable,
    ServiceExists,
    ServiceNotFound,
    TooManyFollowers,
)
from baepo.pipelines import (
    InvalidPipelineSettings,
    PipelinesUnavailable,
    RunFinished,
    RunNotFound,
    SourceMissing,
)
from baepo.registry import RegistryError


class FieldProblem(BaseModel):
    field: str = Field(description="the field as the request names it, e.g. port")
    message: str = Field(description="what is wrong with it")


class ErrorDetail(BaseModel):
    code: str = Field(description="a stable code, e.g. SERVICE_NOT_FOUND")
    message: str = Field(description="one line for a person")
    fields: list[FieldProblem] | None = Field(
        default=None,
        description="bad input: every bad field with its reason (a form shows each by its "
        "field); absent for other errors",
    )


class ErrorBody(BaseModel):
    """What every error answer of the API is."""

    error: ErrorDetail


_ERROR_STATUSES = {
    400: "Bad input (a room's error names the field)",
    401: "Not signed in, or wrong credentials",
    403: "Not allowed, or over a quota",
    404: "No such thing (or not the caller's to see)",
    409: "Clashes with the current state (an operation in progress, a name taken)",
    422: "JSON of the wrong shape",
    429: "Too many failed sign-ins: see Retry-After",
    500: "A bug: the error is logged",
    503: "The state database or storage cannot be used now (a full disk), or too many "
    "logs are followed at once",
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text} for status, text in _ERROR_STATUSES.items()
}
"""Documents the error answers on every route (OpenAPI), in the shape `error_response` makes."""


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    fields: Sequence[tuple[str, str]] = (),
) -> JSONResponse:
    if status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="baepo"', **(headers or {})}
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = [{"field": field, "message": reason} for field, reason in fields]
    return JSONResponse({"error": error}, status_code=status, headers=headers)


# Room error type → (HTTP status, stable code). Rooms register theirs through `install`.
ROOM_ERRORS: dict[type[Exception], tuple[int, str]] = {
    AuthenticationRequired: (401, "UNAUTHENTICATED"),
    TooManyAttempts: (429, "TOO_MANY_ATTEMPTS"),
    AccessDenied: (403, "FORBIDDEN"),
    NotFound: (404, "NOT_FOUND"),
    UserExists: (409, "ALREADY_EXISTS"),
    InvalidName: (400, "INVALID_REQUEST"),
    InvalidServiceSpec: (400, "INVALID_SERVICE_SPEC"),
    InvalidAutoScalingConfiguration: (400, "INVALID_AUTOSCALING_CONFIGURATION"),
    ConfigurationNotFound: (404, "AUTOSCALING_CONFIGURATION_NOT_FOUND"),
    ConfigurationInUse: (409, "AUTOSCALING_CONFIGURATION_IN_USE"),
    ServiceNotFound: (404, "SERVICE_NOT_FOUND"),
    ServiceExists: (409, "SERVICE_EXISTS"),
    RevisionNotFound: (404, "REVISION_NOT_FOUND"),
    OperationNotFound: (404, "OPERATION_NOT_FOUND"),
    OperationInProgress: (409, "OPERATION_IN_PROGRESS"),
    InvalidServiceState: (409, "INVALID_SERVICE_STATE"),
    Conflict: (409, "CONFLICT"),
    QuotaExceeded: (403, "QUOTA_EXCEEDED"),
    InvalidLogQuery: (400, "INVALID_REQUEST"),
    TooManyFollowers: (503, "TOO_MANY_FOLLOWERS"),
    SecretsUnreadable: (500, "SECRETS_UNREADABLE"),
    ControlUnavailable: (503, "UNAVAILABLE"),
    RunNotFound: (404, "RUN_NOT_FOUND"),
    RunFinished: (409, "RUN_FINISHED"),
    SourceMissing: (409, "SOURCE_MISSING"),
    InvalidPipelineSettings: (400, "INVALID_PIPELINE_SETTINGS"),
    PipelinesUnavailable: (503, "UNAVAILABLE"),
    AuthUnavailable: (503, "UNAVAILABLE"),
}


def install(app: FastAPI, extra: dict[type[Exception], tuple[int, str]] | None = None) -> None:
    table = {**ROOM_ERRORS, **(extra or {})}

    async def api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.code, exc.message)

    async def room_error(_: Request, exc: Exception) -> JSONResponse:
        for kind in type(exc).__mro__:
            if kind in table:
                status, code = table[kind]
                fields = exc.problems if isinstance(exc, InvalidServiceSpec) else ()
                return error_response(status, code, str(exc), _headers(exc), fields)
        return error_response(500, "INTERNAL", "internal error")

    async def invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        fields = [(_where(e), str(e.get("msg", "invalid"))) for e in exc.errors()]
        where, reason = fields[0] if fields else ("", "invalid")
        return error_response(422, "INVALID_REQUEST", f"{where}: {reason}", fields=fields)

    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        # Logged with its traceback by Starlette; the client gets the API's shape, not text.
        return error_response(500, "INTERNAL", "internal error")

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        # Starlette's own (no such route, method not allowed) in the API's shape too.
        assert isinstance(exc, StarletteHTTPException)
        code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
        headers = dict(exc.headers) if exc.headers else None
        return error_response(exc.status_code, code, str(exc.detail), headers)

    app.add_exception_handler(Exception, unexpected)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(RegistryError, registry_error)
    for kind in table:
        app.add_exception_handler(kind, room_error)


def _where(error: Any) -> str:
    """A validation error's place in the request (`port`, `health_check.path`)."""
    return ".".join(str(p) for p in error.get("loc", ()) if p != "body")


_HTTP_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 400: "INVALID_REQUEST"}


def _headers(exc: Exception) -> dict[str, str] | None:
    if isinstance(exc, TooManyAttempts):
        return {"Retry-After": str(exc.retry_after)}
    return None


async def registry_error(_: Request, exc: Exception) -> JSONResponse:
    """The registry's error (its OCI code) in the API's shape, naming what it is about."""
    assert isinstance(exc, RegistryError)
    message = exc.message
    if isinstance(exc.detail, dict):
        named = exc.detail.get("name") or exc.detail.get("reference") or exc.detail.get("digest")
        if named:
            message = f"{message}: {named}"
    return error_response(exc.status, exc.code, message)
