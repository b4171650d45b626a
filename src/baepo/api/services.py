"""`/api/v1/services`: App Runner's service calls. Every change answers `202` with an
operation; `GET /api/v1/operations/{id}` follows it (with its log) until it ends."""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from baepo.api.security import Identity, require_unlimited
from baepo.control import (
    EventView,
    OperationView,
    RevisionView,
    Services,
    ServiceView,
)


class HealthCheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    protocol: str | None = Field(default=None, description="tcp or http")
    path: str | None = None
    interval: int | None = None
    timeout: int | None = None
    healthy_threshold: int | None = None
    unhealthy_threshold: int | None = None


class ServiceFields(BaseModel):
    """Every field a service has; all optional here (create needs `name` and `image`)."""

    model_config = ConfigDict(extra="forbid")
    image: str | None = Field(default=None, examples=["127.0.0.1:5000/team/app:1"])
    port: int | None = Field(default=None, description="the port the app listens on (8080)")
    command: str | list[str] | None = Field(default=None, description="start command")
    env: dict[str, str] | None = None
    secrets: dict[str, str] | None = Field(default=None, description="encrypted at rest")
    cpu: float | str | None = Field(default=None, description="vCPU: 0.25, 0.5, 1, 2, 4")
    memory: int | str | None = Field(default=None, description="MB, or '2 GB'")
    health_check: HealthCheckIn | None = None
    min_instances: int | None = None
    max_instances: int | None = None
    max_concurrency: int | None = None
    auto_deploy: bool | None = None
    custom_domains: list[str] | None = None

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class ServiceCreate(ServiceFields):
    name: str = Field(description="DNS-safe: https://<name>.<domain>")
    image: str | None = Field(default=None, examples=["127.0.0.1:5000/team/app:1"])


class Created(BaseModel):
    service: ServiceView
    operation: OperationView


class DeployIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image: str | None = Field(default=None, description="deploy this image instead")


class RollbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    revision: int = Field(ge=1)


def services_router(services: Services, who: Callable[..., Awaitable[Identity]]) -> APIRouter:
    async def unlimited(me: Annotated[Identity, Depends(who)]) -> None:
        require_unlimited(me)

    router = APIRouter(prefix="/api/v1", tags=["services"], dependencies=[Depends(unlimited)])

    async def call(fn: Callable[..., Any], *args: Any) -> Any:
        return await run_in_threadpool(fn, *args)

    @router.post("/services", response_model=Created, status_code=202)
    async def create(body: ServiceCreate) -> Created:
        """Create a service: resolve the image, start instances, route `https://<name>.<domain>`."""
        service, operation = await call(services.create, body.changes())
        return Created(service=service, operation=operation)

    @router.get("/services", response_model=list[ServiceView])
    async def list_services() -> list[ServiceView]:
        return await call(services.list)  # type: ignore[no-any-return]

    @router.get("/services/{name}", response_model=ServiceView)
    async def describe(name: str) -> ServiceView:
        return await call(services.describe, name)  # type: ignore[no-any-return]

    @router.patch("/services/{name}", response_model=OperationView, status_code=202)
    async def update(name: str, body: ServiceFields) -> OperationView:
        """Change configuration; a new revision is deployed when instances must change."""
        return await call(services.update, name, body.changes())  # type: ignore[no-any-return]

    @router.post("/services/{name}/deployments", response_model=OperationView, status_code=202)
    async def deploy(name: str, body: DeployIn | None = None) -> OperationView:
        """Deploy the service's image again (its tag may point elsewhere now), or another."""
        image = body.image if body else None
        return await call(services.deploy, name, image)  # type: ignore[no-any-return]

    @router.post("/services/{name}/rollback", response_model=OperationView, status_code=202)
    async def rollback(name: str, body: RollbackIn) -> OperationView:
        return await call(services.rollback, name, body.revision)  # type: ignore[no-any-return]

    @router.post("/services/{name}/pause", response_model=OperationView, status_code=202)
    async def pause(name: str) -> OperationView:
        """Stop every instance; the URL stays and answers with a "paused" page."""
        return await call(services.pause, name)  # type: ignore[no-any-return]

    @router.post("/services/{name}/resume", response_model=OperationView, status_code=202)
    async def resume(name: str) -> OperationView:
        return await call(services.resume, name)  # type: ignore[no-any-return]

    @router.delete("/services/{name}", response_model=OperationView, status_code=202)
    async def delete(name: str) -> OperationView:
        return await call(services.delete, name)  # type: ignore[no-any-return]

    @router.get("/services/{name}/operations", response_model=list[OperationView])
    async def operations(name: str) -> list[OperationView]:
        """Newest first."""
        return await call(services.operations, name)  # type: ignore[no-any-return]

    @router.get("/operations/{operation_id}", response_model=OperationView)
    async def operation(operation_id: str) -> OperationView:
        """One operation with its log."""
        return await call(services.operation, operation_id)  # type: ignore[no-any-return]

    @router.get("/services/{name}/revisions", response_model=list[RevisionView])
    async def revisions(name: str) -> list[RevisionView]:
        return await call(services.revisions, name)  # type: ignore[no-any-return]

    @router.get("/services/{name}/events", response_model=list[EventView])
    async def events(name: str) -> list[EventView]:
        return await call(services.events, name)  # type: ignore[no-any-return]

    return router
