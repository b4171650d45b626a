"""`/api/v1/services`: App Runner's service calls. Every change answers `202` with an
operation; `GET /api/v1/operations/{id}` follows it (with its log) until it ends.

Who may do what is the auth room's (`rights.py`): a caller reaches the services it owns (an
admin every one); another's service answers `404 SERVICE_NOT_FOUND` (and its operations
`404 OPERATION_NOT_FOUND`) as if it did not exist. A token limited to services may read and
deploy those, nothing else (`403 FORBIDDEN`); one limited to repositories has nothing here.
An image the caller may not run is `403 IMAGE_FORBIDDEN` before anything is stored.

The request models are made from the field table (`baepo.service_fields`): JSON of the wrong
shape is `422 INVALID_REQUEST`; the body becomes a `SpecChange` that the control room checks
value by value (`400 INVALID_SERVICE_SPEC`, naming every bad field).

`GET /api/v1/services/{name}/logs` reads a service's logs (`baepo.control.service_logs`) as a
JSON list, or follows them as Server-Sent Events (`streams.py`); reading them is a read of the
service, with the same rights as describing it.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, create_model
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from baepo.api.errors import ApiError
from baepo.api.images import ImageCheck
from baepo.api.security import Identity
from baepo.api.streams import follow_events
from baepo.auth.rights import ServiceAction, may_on_services, may_own, service_reach
from baepo.control import (
    MAX_LOG_LINES,
    Caller,
    EventView,
    LogEntry,
    LogQuery,
    LogSource,
    OperationView,
    RevisionView,
    Services,
    ServiceView,
    SpecChange,
    parse_since,
)
from baepo.service_fields import FIELDS, HEALTH_CHECK_FIELDS, Kind
from baepo.service_fields import Field as SpecField

# What JSON a field of each kind accepts; the control room reads the spellings (`"2 GB"`).
# The models are strict: `true` is no port and `1` no switch (lax pydantic would make them so).
_ACCEPTS: dict[Kind, Any] = {
    Kind.NAME: str,
    Kind.IMAGE: str,
    Kind.INTEGER: int | str,
    Kind.COMMAND: str | list[str],
    Kind.VARIABLES: dict[str, str],
    Kind.CPU: float | str,
    Kind.MEMORY: int | str,
    Kind.PROTOCOL: str,
    Kind.PATH: str,
    Kind.SWITCH: bool,
    Kind.HOSTS: list[str],
    Kind.AUTOSCALING: str,
}


def _model(title: str, doc: str, fields: tuple[SpecField, ...], **extra: Any) -> type[BaseModel]:
    """A request model with every field of `fields` optional, from the field table."""
    definitions: dict[str, Any] = {
        f.name: (
            _ACCEPTS[f.kind] | None,
            Field(
                default=None,
                description=f.help,
                examples=[f.example] if f.example is not None else None,
            ),
        )
        for f in fields
    }
    return create_model(
        title,
        __config__=ConfigDict(extra="forbid", strict=True),
        __doc__=doc,
        **definitions,
        **extra,
    )


_ACCEPTS[Kind.HEALTH_CHECK] = _model("HealthCheckIn", "A health check.", HEALTH_CHECK_FIELDS)
ServiceFields = _model(
    "ServiceFields",
    "A change of a service: the fields given replace theirs (a service cannot be renamed).",
    tuple(f for f in FIELDS if f.kind is not Kind.NAME),
)
ServiceCreate = _model(
    "ServiceCreate",
    "A new service: `name` and `image`, the other fields take their defaults.",
    tuple(f for f in FIELDS if f.kind is not Kind.NAME),
    name=(str, Field(description=FIELDS[0].help, examples=[FIELDS[0].example])),
    owner=(
        str | None,
        Field(
            default=None,
            description="a user or team namespace (admins only); default: the caller",
            examples=["team"],
        ),
    ),
)

Handler = TypeVar("Handler", bound=Callable[..., Any])


def takes(model: type[BaseModel]) -> Callable[[Handler], Handler]:
    """Give a handler's `body` its request model. FastAPI reads the model from the annotation,
    but these are made from the field table when the module loads, which a type checker cannot
    follow: the handler is written with `body: BaseModel` and the real model is set here."""

    def annotate(handler: Handler) -> Handler:
        handler.__annotations__["body"] = model
        return handler

    return annotate


def _change(body: BaseModel, *leave: str) -> SpecChange:
    """The fields the caller sent (absent ones keep their value), as the control room takes
    them."""
    return SpecChange(body.model_dump(exclude_unset=True, exclude=set(leave)))


class Created(BaseModel):
    service: ServiceView
    operation: OperationView


class DeployIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image: str | None = Field(default=None, description="deploy this image instead")


class RollbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    revision: int = Field(ge=1)


def caller(me: Identity, action: ServiceAction) -> Caller:
    """What `me` reaches, for the control room; 403 when it may not `action` at all."""
    rights = me.rights
    if not may_on_services(rights, action):
        what = "read and deploy them" if me.services else "use the registry for them"
        raise ApiError(
            403, "FORBIDDEN", f"this API token is limited to {me.limits()} and may only {what}"
        )
    reach = service_reach(rights)
    return Caller(me.name, reach.owners, reach.services)


def services_router(
    services: Services, who: Callable[..., Awaitable[Identity]], images: ImageCheck
) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["services"])
    Me = Annotated[Identity, Depends(who)]

    async def check_image(me: Identity, image: str | None) -> None:
        if image is not None:
            await run_in_threadpool(images.check, me.rights, image)

    @router.post("/services", response_model=Created, status_code=202)
    @takes(ServiceCreate)
    async def create(body: BaseModel, me: Me) -> Created:
        """Create a service: resolve the image, start instances, route `https://<name>.<domain>`.

        It belongs to the caller, or to `owner` (a user or team namespace) if an admin says so."""
        who = caller(me, ServiceAction.CREATE)
        asked: str | None = getattr(body, "owner", None)
        owner = asked if asked is not None else me.name
        if not may_own(me.rights, owner):
            raise ApiError(403, "FORBIDDEN", f"only an admin may create a service for {owner!r}")
        change = _change(body, "owner")
        await check_image(me, change.image)
        service, operation = await run_in_threadpool(
            services.create, change, caller=who, owner=owner
        )
        return Created(service=service, operation=operation)

    @router.get("/services", response_model=list[ServiceView])
    async def list_services(me: Me) -> list[ServiceView]:
        """The services the caller may see: its own (an admin's: all)."""
        return await run_in_threadpool(services.list, caller=caller(me, ServiceAction.READ))

    @router.get("/services/{name}", response_model=ServiceView)
    async def describe(name: str, me: Me) -> ServiceView:
        return await run_in_threadpool(
            services.describe, name, caller=caller(me, ServiceAction.READ)
        )

    @router.patch("/services/{name}", response_model=OperationView, status_code=202)
    @takes(ServiceFields)
    async def update(name: str, body: BaseModel, me: Me) -> OperationView:
        """Change configuration; a new revision is deployed when instances must change."""
        who = caller(me, ServiceAction.CHANGE)
        change = _change(body)
        await check_image(me, change.image)
        return await run_in_threadpool(services.update, name, change, caller=who)

    @router.post("/services/{name}/deployments", response_model=OperationView, status_code=202)
    async def deploy(name: str, me: Me, body: DeployIn | None = None) -> OperationView:
        """Deploy the service's image again (its tag may point elsewhere now), or another."""
        who = caller(me, ServiceAction.DEPLOY)
        image = body.image if body else None
        await check_image(me, image)
        return await run_in_threadpool(services.deploy, name, image, caller=who)

    @router.post("/services/{name}/rollback", response_model=OperationView, status_code=202)
    async def rollback(name: str, body: RollbackIn, me: Me) -> OperationView:
        who = caller(me, ServiceAction.CHANGE)
        return await run_in_threadpool(services.rollback, name, body.revision, caller=who)

    @router.post("/services/{name}/pause", response_model=OperationView, status_code=202)
    async def pause(name: str, me: Me) -> OperationView:
        """Stop every instance; the URL stays and answers with a "paused" page."""
        return await run_in_threadpool(
            services.pause, name, caller=caller(me, ServiceAction.CHANGE)
        )

    @router.post("/services/{name}/resume", response_model=OperationView, status_code=202)
    async def resume(name: str, me: Me) -> OperationView:
        return await run_in_threadpool(
            services.resume, name, caller=caller(me, ServiceAction.CHANGE)
        )

    @router.delete("/services/{name}", response_model=OperationView, status_code=202)
    async def delete(name: str, me: Me) -> OperationView:
        return await run_in_threadpool(
            services.delete, name, caller=caller(me, ServiceAction.CHANGE)
        )

    @router.get("/services/{name}/operations", response_model=list[OperationView])
    async def operations(name: str, me: Me) -> list[OperationView]:
        """Newest first."""
        return await run_in_threadpool(
            services.operations, name, caller=caller(me, ServiceAction.READ)
        )

    @router.get("/operations/{operation_id}", response_model=OperationView)
    async def operation(operation_id: str, me: Me) -> OperationView:
        """One operation with its log."""
        who = caller(me, ServiceAction.READ)
        return await run_in_threadpool(services.operation, operation_id, caller=who)

    @router.get("/services/{name}/revisions", response_model=list[RevisionView])
    async def revisions(name: str, me: Me) -> list[RevisionView]:
        return await run_in_threadpool(
            services.revisions, name, caller=caller(me, ServiceAction.READ)
        )

    @router.get("/services/{name}/events", response_model=list[EventView])
    async def events(name: str, me: Me) -> list[EventView]:
        return await run_in_threadpool(services.events, name, caller=caller(me, ServiceAction.READ))

    @router.get(
        "/services/{name}/logs",
        response_model=list[LogEntry],
        responses={
            200: {
                "description": "The lines, oldest first; or, followed, Server-Sent Events: "
                "one `data:` line of JSON (a log entry) per line, `: keep-alive` comments, "
                "and `event: end` when the follow's time is up",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            }
        },
    )
    async def logs(
        name: str,
        me: Me,
        request: Request,
        since: Annotated[
            str | None,
            Query(
                description="from this long ago (10m, 1h30m, 2d) or this time (RFC 3339)",
                examples=["10m"],
                max_length=64,
            ),
        ] = None,
        instance: Annotated[
            str | None, Query(description="only this instance's lines", max_length=80)
        ] = None,
        revision: Annotated[int | None, Query(description="only this revision's", ge=1)] = None,
        limit: Annotated[
            int, Query(description="at most this many lines, the last ones", ge=0, le=MAX_LOG_LINES)
        ] = 1000,
        source: Annotated[
            LogSource,
            Query(description="what instances wrote, the service's event log, or both"),
        ] = LogSource.APPLICATION,
        follow: Annotated[
            bool, Query(description="then follow, as Server-Sent Events (as the Accept does)")
        ] = False,
        timeout: Annotated[
            float, Query(description="seconds a follow lasts at most", gt=0, le=86400)
        ] = 3600,
    ) -> Response | list[LogEntry]:
        """What the service's instances wrote (those gone too: their last lines are kept),
        and its event log (deploys, health checks, crashes), in time order."""
        who = caller(me, ServiceAction.READ)
        streaming = follow or "text/event-stream" in request.headers.get("accept", "")
        # A client that reconnects goes on from the last line it had.
        start = since or (request.headers.get("last-event-id") if streaming else None)
        query = LogQuery(
            since=parse_since(start) if start else None,
            instance=instance,
            revision=revision,
            limit=limit,
            source=source,
        )
        if not streaming:
            return await run_in_threadpool(services.logs, name, query, caller=who)
        follower = await run_in_threadpool(services.follow_logs, name, query, caller=who)
        return StreamingResponse(
            follow_events(follower, request, timeout),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return router
