"""The services' pages: the dashboard, a service, creating one, and what can be done to one
(deploy, roll back, pause, resume, delete), each a call of `/api/v1/services`.

A change answers with a redirect to the service's page (POST, then GET: a reload does not
post again), where the operation it started shows; while one is in flight the page polls
itself (htmx) until it ends. A change the API refuses shows on the page with the API's words,
beside the field it names when it names one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.responses import RedirectResponse, Response

from baepo.console.charts import WINDOWS, charts, requests_per_second
from baepo.console.client import Api, segment
from baepo.console.errors import ApiRefused
from baepo.console.forms import (
    DEFAULT_SIZE,
    DEFAULTS,
    SERVICE_FORM_FIELDS,
    Problems,
    refused_fields,
    service_request,
)
from baepo.console.visits import Page, Visit
from baepo.references import InvalidReference, Reference

RECENT_OPERATIONS = 10
"""Operations on the dashboard, newest first, of all the caller's services."""
PICKED_REPOSITORIES = 30
"""Repositories whose tags the image field offers (the most a page asks the API about)."""
DEPLOYS = frozenset(
    {"CREATE_SERVICE", "UPDATE_SERVICE", "START_DEPLOYMENT", "ROLLBACK_SERVICE", "RESUME_SERVICE"}
)
"""Operations that put a revision in service: the dashboard's "last deploy"."""
LOG_LINES = 100
"""The last lines of a service's log its page shows (then follows, with a script)."""


@dataclass(frozen=True)
class Action:
    """A change of a service that takes no input."""

    verb: str
    api_method: str
    api_path: str
    warning: str
    """What the confirmation page says; "" when the action asks none."""
    leaves: bool = False
    """The service goes away: back to the dashboard after."""


ACTIONS = (
    Action(
        "pause",
        "POST",
        "/pause",
        "Its instances stop, and its URL answers that it is paused until you resume it.",
    ),
    Action("resume", "POST", "/resume", ""),
    Action(
        "delete",
        "DELETE",
        "",
        "Its instances stop and its URL no longer answers. Its revisions and configuration "
        "are gone for good.",
        leaves=True,
    ),
)


def service_path(name: str) -> str:
    return f"/services/{segment(name)}"


async def dashboard(visit: Visit) -> Response:
    services = await visit.api.get("/services")
    names = [s["name"] for s in services]
    histories, metrics = await asyncio.gather(
        asyncio.gather(*(history(visit.api, name) for name in names)),
        all_metrics(visit.api, "5m"),
    )
    rows = [
        {**summary(s, h), "per_second": requests_per_second(m) if (m := metrics.get(n)) else None}
        for n, s, h in zip(names, services, histories, strict=True)
    ]
    recent = sorted(
        (op for h in histories for op in h), key=lambda op: op["created_at"], reverse=True
    )
    return await visit.render("dashboard.html", rows=rows, recent=recent[:RECENT_OPERATIONS])


async def history(api: Api, name: str) -> list[dict[str, Any]]:
    """A service's operations, newest first; none if it went away meanwhile."""
    try:
        found: list[dict[str, Any]] = await api.get(f"{service_path(name)}/operations")
    except ApiRefused as refused:
        if refused.status == 404:
            return []
        raise
    return found


async def recent_metrics(api: Api, name: str, window: str) -> dict[str, Any] | None:
    """The service's metrics over `window`; None if they cannot be read (it went away
    meanwhile, or the caller's token may not read them)."""
    try:
        found: dict[str, Any] = await api.get(f"{service_path(name)}/metrics?window={window}")
    except ApiRefused:
        return None
    return found


async def all_metrics(api: Api, window: str) -> dict[str, dict[str, Any]]:
    """The metrics over `window` of every service the caller may read, by name (none if the
    caller's token may not read them)."""
    try:
        found: list[dict[str, Any]] = await api.get(f"/metrics?window={window}")
    except ApiRefused:
        return {}
    return {m["service"]: m for m in found}


def summary(service: dict[str, Any], operations: list[dict[str, Any]]) -> dict[str, Any]:
    """A dashboard row: the service, its running instances and its last deploy."""
    running = [i for i in service["instances"] if i["state"] == "running"]
    deploys = (op for op in operations if op["kind"] in DEPLOYS)
    return {**service, "running": len(running), "last_deploy": next(deploys, None)}


async def service_page(visit: Visit) -> Response:
    return await show_service(visit, visit.request.path_params["name"])


async def show_service(
    visit: Visit,
    name: str,
    status: int = 200,
    problem: str = "",
    deploy: Problems | None = None,
    domain: Problems | None = None,
    typed_domain: str = "",
) -> Response:
    """The service's page; `problem` says what the API refused, `deploy` and `domain` what
    of those forms (`typed_domain`: the domain as typed, to correct)."""
    path = service_path(name)
    window = visit.request.query_params.get("window", WINDOWS[0])
    window = window if window in WINDOWS else WINDOWS[0]
    service, operations, revisions, logs, metrics = await asyncio.gather(
        visit.api.get(path),
        visit.api.get(f"{path}/operations"),
        visit.api.get(f"{path}/revisions"),
        visit.api.get(f"{path}/logs?limit={LOG_LINES}"),
        recent_metrics(visit.api, name, window),
    )
    latest = (
        await visit.api.get(f"/operations/{segment(operations[0]['id'])}") if operations else None
    )
    images = await tag_choices(visit, service["config"]["image"])
    return await visit.render(
        "service.html",
        status,
        service=service,
        operations=operations,
        revisions=revisions,
        latest=latest,
        images=images,
        problem=problem,
        deploy=deploy or Problems(),
        domain=domain or Problems(),
        typed_domain=typed_domain,
        actions=ACTIONS,
        logs=logs,
        log_lines=LOG_LINES,
        charts=charts(metrics or {}),
        metrics=metrics,
        window=window,
        windows=WINDOWS,
    )


async def tag_choices(visit: Visit, image: str) -> list[str]:
    """The other tags of the service's repository, when it is in Baepo's registry."""
    try:
        reference = Reference.parse(image)
    except InvalidReference:
        return []
    if reference.domain not in visit.console.registry_hosts:
        return []
    return await registry_images(visit.api, reference.domain, [reference.path])


async def registry_images(api: Api, host: str, repositories: list[str]) -> list[str]:
    """`host/repository:tag` for each tag of `repositories` (the first `PICKED_REPOSITORIES`)."""

    async def tags(repository: str) -> list[str]:
        try:
            found = await api.get(f"/registry/repositories/{quote(repository, safe='/')}/tags")
        except ApiRefused:
            return []  # deleted meanwhile, or not the caller's to pull
        return [f"{host}/{repository}:{t['tag']}" for t in found]

    picked = repositories[:PICKED_REPOSITORIES]
    return [ref for refs in await asyncio.gather(*(tags(r) for r in picked)) for ref in refs]


async def deploy(visit: Visit) -> Response:
    name = visit.request.path_params["name"]
    image = visit.form.get("image", "").strip()
    try:
        await visit.api.post(f"{service_path(name)}/deployments", {"image": image or None})
    except ApiRefused as refused:
        if refused.status == 404:
            raise
        problems = refused_fields(refused, ("image",))
        return await show_service(
            visit, name, refused.status, " ".join(problems.general), deploy=problems
        )
    return RedirectResponse(service_path(name), status_code=303)


async def rollback(visit: Visit) -> Response:
    name = visit.request.path_params["name"]
    body = {"revision": visit.form.get("revision", "")}
    return await change(visit, name, "POST", f"{service_path(name)}/rollback", body)


async def change(
    visit: Visit, name: str, method: str, path: str, body: object = None, leaves: bool = False
) -> Response:
    """Ask the API for a change; to the service's page (the dashboard when it `leaves`), or
    the page with the API's refusal."""
    try:
        await visit.api.call(method, path, body)
    except ApiRefused as refused:
        if refused.status == 404:
            raise
        return await show_service(visit, name, refused.status, refused.message)
    return RedirectResponse("/" if leaves else service_path(name), status_code=303)


def action_pages(action: Action) -> tuple[Page, Page]:
    """The confirmation page (GET) and the change (POST) of `action`."""

    async def confirm(visit: Visit) -> Response:
        name = visit.request.path_params["name"]
        service = await visit.api.get(service_path(name))
        return await visit.render("confirm.html", service=service, action=action)

    async def act(visit: Visit) -> Response:
        name = visit.request.path_params["name"]
        path = f"{service_path(name)}{action.api_path}"
        return await change(visit, name, action.api_method, path, leaves=action.leaves)

    return confirm, act


FORM_DEFAULTS = {
    "name": "",
    "image": "",
    "port": str(DEFAULTS["port"]),
    "size": DEFAULT_SIZE.value,
    "min_instances": str(DEFAULTS["min_instances"]),
    "max_instances": str(DEFAULTS["max_instances"]),
    "env": "",
    "secrets": "",
    "health_check_protocol": "tcp",
    "health_check_path": "",
}
"""What the create form shows first: the API's defaults (port 8080, 1 vCPU and 2 GB, ...)."""


async def new_service(visit: Visit) -> Response:
    return await show_form(visit, FORM_DEFAULTS, Problems())


async def create_service(visit: Visit) -> Response:
    body, problems = service_request(visit.form)
    values = {name: visit.form.get(name, "") for name in FORM_DEFAULTS}
    if problems:
        return await show_form(visit, values, problems, 400)
    try:
        await visit.api.post("/services", body)
    except ApiRefused as refused:
        problems = refused_fields(refused, SERVICE_FORM_FIELDS)
        return await show_form(visit, values, problems, refused.status)
    return RedirectResponse(service_path(body["name"]), status_code=303)


async def show_form(
    visit: Visit, values: dict[str, str], problems: Problems, status: int = 200
) -> Response:
    repositories = await visit.api.get("/registry/repositories")
    host = visit.console.registry_host(visit.request)
    images = await registry_images(visit.api, host, [r["name"] for r in repositories])
    return await visit.render(
        "new_service.html", status, values=values, problems=problems, images=images
    )
