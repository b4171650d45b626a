"""`/api/v1/autoscaling-configurations`: shared autoscaling configurations (App Runner's
AutoScalingConfiguration calls), which services name in their `autoscaling_configuration`.

    POST   /autoscaling-configurations                  a new revision (201): the first of a
                                                        new name, or the next of one
    GET    /autoscaling-configurations                  every revision the caller reaches
                                                        (?name=, ?latest_only=true)
    GET    /autoscaling-configurations/{name}           the latest revision
    GET    /autoscaling-configurations/{name}/{rev}     that revision
    DELETE /autoscaling-configurations/{name}           every revision of the name
    DELETE /autoscaling-configurations/{name}/{rev}     that revision

Rights are the services' (`rights.py`): a caller reads and changes the configurations of the
owners whose services it reaches (an admin: all), and `DefaultConfiguration`, which is built
in. A token limited to services may read them. Values out of bounds are
`400 INVALID_AUTOSCALING_CONFIGURATION` (naming every bad field); a delete while a service uses
the revision is `409 AUTOSCALING_CONFIGURATION_IN_USE`, of the default `409 CONFLICT`.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from baepo.api.errors import ApiError
from baepo.api.security import Identity
from baepo.api.services import caller
from baepo.auth.rights import ServiceAction, may_own
from baepo.control import AutoScalingConfigurations, ConfigurationView
from baepo.control.configuration_refs import MAX_REVISION

NameParam = Annotated[str, Path(description="the configuration's name", max_length=64)]
RevisionParam = Annotated[int, Path(description="one revision of it", ge=1, le=MAX_REVISION)]


class ConfigurationIn(BaseModel):
    """A new revision of a configuration; absent values take App Runner's defaults."""

    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(
        description="4 to 32 letters, digits, '-' or '_'; an existing name adds a revision",
        examples=["fast"],
    )
    min_size: int = Field(default=1, description="instances kept running, 0 to 25")
    max_size: int = Field(default=25, description="instances the autoscaler may run, 1 to 25")
    max_concurrency: int = Field(
        default=100, description="requests per instance before queueing, 1 to 200"
    )
    owner: str | None = Field(
        default=None, description="a user or team namespace (admins only); default: the caller"
    )


def autoscaling_router(
    configurations: AutoScalingConfigurations, who: Callable[..., Awaitable[Identity]]
) -> APIRouter:
    router = APIRouter(prefix="/api/v1/autoscaling-configurations", tags=["autoscaling"])
    Me = Annotated[Identity, Depends(who)]

    @router.post("", response_model=ConfigurationView, status_code=201)
    async def create(body: ConfigurationIn, me: Me) -> ConfigurationView:
        """Create a configuration, or the next revision of one (the newest is the latest)."""
        who = caller(me, ServiceAction.CREATE)
        owner = body.owner if body.owner is not None else me.name
        if not may_own(me.rights, owner):
            raise ApiError(403, "FORBIDDEN", f"only an admin may create one for {owner!r}")
        return await run_in_threadpool(
            configurations.create,
            body.name,
            body.min_size,
            body.max_size,
            body.max_concurrency,
            caller=who,
            owner=owner,
        )

    @router.get("", response_model=list[ConfigurationView])
    async def list_configurations(
        me: Me,
        name: Annotated[str | None, Query(description="only this name", max_length=64)] = None,
        latest_only: Annotated[bool, Query(description="only each name's latest")] = False,
    ) -> list[ConfigurationView]:
        """The configurations the caller may use, by name, newest revision first."""
        return await run_in_threadpool(
            configurations.list,
            caller=caller(me, ServiceAction.READ),
            name=name,
            latest_only=latest_only,
        )

    @router.get("/{name}", response_model=ConfigurationView)
    async def describe_latest(name: NameParam, me: Me) -> ConfigurationView:
        who = caller(me, ServiceAction.READ)
        return await run_in_threadpool(configurations.describe, name, caller=who)

    @router.get("/{name}/{revision}", response_model=ConfigurationView)
    async def describe(name: NameParam, revision: RevisionParam, me: Me) -> ConfigurationView:
        who = caller(me, ServiceAction.READ)
        return await run_in_threadpool(configurations.describe, name, revision, caller=who)

    @router.delete("/{name}", response_model=list[ConfigurationView])
    async def delete_all(name: NameParam, me: Me) -> list[ConfigurationView]:
        """Delete every revision; refused (409) while a service uses one."""
        who = caller(me, ServiceAction.CHANGE)
        return await run_in_threadpool(configurations.delete, name, caller=who)

    @router.delete("/{name}/{revision}", response_model=ConfigurationView)
    async def delete(name: NameParam, revision: RevisionParam, me: Me) -> ConfigurationView:
        """Delete one revision; refused (409) while a service uses it."""
        who = caller(me, ServiceAction.CHANGE)
        deleted = await run_in_threadpool(configurations.delete, name, revision, caller=who)
        return deleted[0]

    return router
