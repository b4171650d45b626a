"""AWS's JSON protocols (awsJson1_0, awsJson1_1) at one endpoint, for every service Baepo
speaks: one dispatcher keyed by `X-Amz-Target`, one signature check, one error shape.

A request is `POST /` with `X-Amz-Target: <prefix>.<Operation>` (ECR's prefix is
`AmazonEC2ContainerRegistry_V20150921`, App Runner's `AppRunner`) and a JSON object as its body,
signed with SigV4 by one of Baepo's access keys. The endpoint

    1. finds the service by the target's prefix (UnknownOperationException otherwise),
    2. reads the body (at most `max_body` bytes),
    3. checks the signature: scoped to the service's signing name, made within 15 minutes, by
       a key that exists, with its secret (sigv4.py);
    4. finds the operation, parses the body, and runs the handler in a worker thread with the
       `Call` (who, for which region and account) and the input as `Params`;
    5. answers the handler's dict as JSON (`application/x-amz-json-1.x`; datetimes as epoch
       seconds, the protocol's default), or an error as `{"__type", "message"}` with the
       `x-amzn-ErrorType` header. Every answer carries `x-amzn-RequestId`.

A service is a `JsonService`: its signing name, target prefix, JSON version, operations
(`name → handler`), the error its bad input raises, the error a bug answers with, and how its
rooms' errors read as its own (`translate`). Adding a service is building one and passing it
to `AwsEndpoint` in the composition root.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from baepo.auth import AuthUnavailable, SigningKey
from baepo.auth.rights import Caller
from baepo.aws import sigv4
from baepo.aws.arns import Arn
from baepo.aws.errors import (
    AwsError,
    InvalidSignature,
    RequestTooLarge,
    SerializationError,
    ServiceUnavailable,
    UnknownOperation,
    UnrecognizedClient,
)
from baepo.aws.params import Params
from baepo.clock import Clock
from baepo.store import nul_place

log = logging.getLogger("baepo.aws")

MAX_BODY = 1024 * 1024
"""The largest request body read: the largest input of the operations served (a lifecycle
policy, 30 KiB) with room to spare."""


@dataclass(frozen=True)
class Call:
    """One operation call: who makes it, and where."""

    operation: str
    caller: Caller
    """The access key's API token, as the auth room's rights see it."""
    key_id: str
    region: str
    """The region the client signed for (Baepo answers under any)."""
    account: str
    request_id: str
    endpoint: str
    """The URL the client called (`http://127.0.0.1:5000`, `https://registry.example.org`):
    also where Baepo's registry answers."""

    @property
    def host(self) -> str:
        """The endpoint's host (and port): what image names start with."""
        return self.endpoint.partition("://")[2]

    def arn(self, service: str, resource: str) -> str:
        return str(Arn(service, self.region, self.account, resource))


Handler = Callable[[Call, Params], Mapping[str, Any]]


def _untranslated(_: Exception) -> AwsError | None:
    return None


@dataclass(frozen=True)
class JsonService:
    signing_name: str
    """The service in a credential's scope (`ecr`, `apprunner`)."""
    target_prefix: str
    json_version: str
    """`1.0` or `1.1`: the answers' `Content-Type` is `application/x-amz-json-<version>`."""
    operations: Mapping[str, Handler]
    invalid: type[AwsError]
    """What bad input raises (ECR: InvalidParameterException)."""
    internal: type[AwsError]
    """What a bug answers (ECR: ServerException), status 500."""
    translate: Callable[[Exception], AwsError | None] = _untranslated
    """The service's error for another room's (a registry's NameUnknown is ECR's
    RepositoryNotFoundException), or None for a bug."""

    @property
    def content_type(self) -> str:
        return f"application/x-amz-json-{self.json_version}"


class SigningKeys(Protocol):
    """Where access keys' secrets are found (the auth room's `AccessKeys`)."""

    def signing_key(self, key_id: str) -> SigningKey | None: ...


class AwsEndpoint:
    """The ASGI app for AWS JSON-protocol requests (see the module docstring)."""

    def __init__(
        self,
        services: Iterable[JsonService],
        keys: SigningKeys,
        clock: Clock,
        account: str,
        *,
        max_body: int = MAX_BODY,
    ) -> None:
        self._services = {service.target_prefix: service for service in services}
        self._keys = keys
        self._clock = clock
        self.account = account
        self._max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        request_id = str(uuid.uuid4())
        target = request.headers.get("x-amz-target", "")
        prefix, _, operation = target.rpartition(".")
        service = self._services.get(prefix)
        try:
            if service is None:
                raise UnknownOperation(f"Unknown operation {target!r}")
            response = await self._serve(request, service, operation, request_id)
        except AwsError as exc:
            response = _error(exc, service, request_id)
        await response(scope, receive, send)

    async def _serve(
        self, request: Request, service: JsonService, operation: str, request_id: str
    ) -> Response:
        body = await self._body(request)
        received = sigv4.Received(
            request.method,
            request.scope.get("raw_path", request.url.path.encode()).decode("latin-1"),
            request.scope.get("query_string", b"").decode("latin-1"),
            [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.scope["headers"]],
            hashlib.sha256(body).hexdigest(),
        )
        signature, key = await self._authenticate(received, service)
        handler = service.operations.get(operation)
        if handler is None:
            raise UnknownOperation(f"Unknown operation {service.target_prefix}.{operation}")
        call = Call(
            operation,
            key.caller,
            key.key_id,
            signature.credential.region,
            self.account,
            request_id,
            f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}",
        )
        document = _json_object(body)
        place = nul_place(document)  # PostgreSQL's text cannot keep one
        if place is not None:
            raise service.invalid(f"{place or 'The body'} must not contain a NUL character.")
        params = Params(document, service.invalid)
        try:
            result = await run_in_threadpool(handler, call, params)
        except AwsError:
            raise
        except Exception as exc:
            translated = service.translate(exc)
            if translated is None:
                log.exception("%s.%s failed", service.target_prefix, operation)
                raise service.internal("An internal error occurred") from exc
            raise translated from exc
        content = json.dumps(result, default=_json_value, separators=(",", ":"))
        return Response(
            content, 200, {"x-amzn-RequestId": request_id}, media_type=service.content_type
        )

    async def _body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_body:
            raise RequestTooLarge(f"Request body larger than {self._max_body} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > self._max_body:
                raise RequestTooLarge(f"Request body larger than {self._max_body} bytes")
        return bytes(body)

    async def _authenticate(
        self, received: sigv4.Received, service: JsonService
    ) -> tuple[sigv4.Signature, SigningKey]:
        signature = sigv4.parse(received)
        sigv4.check_scope(signature, service.signing_name)
        sigv4.check_time(signature, self._clock.now())
        if signature.presigned and "x-amz-target" not in signature.signed_headers:
            # A presigned URL is handed around: it must fix the operation (its body is signed).
            raise InvalidSignature("A presigned request must sign its X-Amz-Target header.")
        try:
            key = await run_in_threadpool(self._keys.signing_key, signature.credential.key_id)
        except AuthUnavailable as exc:
            raise ServiceUnavailable(str(exc)) from exc
        if key is None:
            raise UnrecognizedClient("The security token included in the request is invalid.")
        sigv4.verify(received, signature, key.secret)
        return signature, key


def _json_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except ValueError as exc:
        raise SerializationError(f"The request body is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise SerializationError("The request body must be a JSON object")
    return value


def _json_value(value: object) -> object:
    if isinstance(value, datetime):
        return round(value.timestamp(), 3)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _error(exc: AwsError, service: JsonService | None, request_id: str) -> Response:
    content = json.dumps({"__type": exc.code, "message": exc.message})
    media = service.content_type if service is not None else "application/x-amz-json-1.1"
    headers = {"x-amzn-RequestId": request_id, "x-amzn-ErrorType": exc.code}
    return Response(content, exc.status, headers, media_type=media)
