"""A service's configuration, changed from the console: the edit form (`PATCH
/api/v1/services/{name}` with what changed), and its custom domains (the same call, with the
list one longer or shorter).

Like every change, a saved form goes back to the service's page (POST, then GET), where the
operation it started shows; a refusal shows on the form, beside the field the API names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.responses import RedirectResponse, Response

from baepo.console.errors import ApiRefused
from baepo.console.forms import (
    SERVICE_FORM_FIELDS,
    Problems,
    config_values,
    refused_fields,
    update_request,
)
from baepo.console.services import service_path, show_service, tag_choices
from baepo.console.visits import Visit

DOMAIN_FIELDS = ("domain",)


async def edit_page(visit: Visit) -> Response:
    service = await visit.api.get(service_path(visit.request.path_params["name"]))
    return await show_form(visit, service, config_values(service["config"]), Problems())


async def save(visit: Visit) -> Response:
    name = visit.request.path_params["name"]
    service = await visit.api.get(service_path(name))
    current = config_values(service["config"])
    values = {field: visit.form.get(field, "") for field in current}
    body, problems = update_request(visit.form, current)
    if problems:
        return await show_form(visit, service, values, problems, 400)
    if body:
        try:
            await visit.api.patch(service_path(name), body)
        except ApiRefused as refused:
            if refused.status == 404:
                raise
            problems = refused_fields(refused, SERVICE_FORM_FIELDS)
            return await show_form(visit, service, values, problems, refused.status)
    return RedirectResponse(service_path(name), status_code=303)


async def show_form(
    visit: Visit,
    service: dict[str, Any],
    values: dict[str, str],
    problems: Problems,
    status: int = 200,
) -> Response:
    images = await tag_choices(visit, service["config"]["image"])
    return await visit.render(
        "configuration.html",
        status,
        service=service,
        values=values,
        problems=problems,
        images=images,
    )


async def add_domain(visit: Visit) -> Response:
    """Add the typed domain to the service's custom domains."""
    domain = visit.form.get("domain", "").strip().lower()
    if not domain:
        return await refuse_domain(visit, domain, Problems({"domain": "type a host name"}))
    return await set_domains(visit, domain, lambda domains: [*domains, domain])


async def remove_domain(visit: Visit) -> Response:
    domain = visit.form.get("domain", "")
    return await set_domains(visit, "", lambda domains: [d for d in domains if d != domain])


async def set_domains(
    visit: Visit, typed: str, change: Callable[[list[str]], list[str]]
) -> Response:
    """`PATCH` the service's custom domains to `change(current)`; the page with the API's
    refusal beside the domain field."""
    name = visit.request.path_params["name"]
    service = await visit.api.get(service_path(name))
    domains = change(list(service["config"]["custom_domains"]))
    try:
        await visit.api.patch(service_path(name), {"custom_domains": domains})
    except ApiRefused as refused:
        if refused.status == 404:
            raise
        return await refuse_domain(
            visit, typed, refused_fields(refused, DOMAIN_FIELDS), refused.status
        )
    return RedirectResponse(service_path(name) + "#domains-heading", status_code=303)


async def refuse_domain(
    visit: Visit, typed: str, problems: Problems, status: int = 400
) -> Response:
    """The service's page with what is wrong beside the domain field (or above, when the
    API named no field: a service in the middle of an operation)."""
    name = visit.request.path_params["name"]
    general = " ".join(problems.general)
    return await show_service(visit, name, status, general, domain=problems, typed_domain=typed)
