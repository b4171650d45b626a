"""The console's routes, for the composition root to add to the API app (`create_api`'s
`routes`): plain Starlette routes, kept out of the API's OpenAPI document.

    GET  /                          the dashboard (to /sign-in when not signed in)
    GET  /sign-in, POST /sign-in    sign in;  POST /sign-out
    GET  /new, POST /new            create a service
    GET  /services/{name}           a service
    POST /services/{name}/deploy    deploy its image again, or another
    POST /services/{name}/rollback  back to a revision
    GET  /services/{name}/{action}  confirm pause, resume, delete; POST: do it
    GET  /services/{name}/configuration, POST   edit its configuration
    POST /services/{name}/domains, …/domains/remove   add or remove a custom domain
    GET  /services/{name}/logs/live the log as it comes (Server-Sent Events, relays.py)
    GET  /services/{name}/pipeline, POST        its pipeline: git remote, webhooks, settings
    POST /services/{name}/pipeline/webhook-secret   a new webhook secret, shown once
    GET  /pipelines                 the runs of all the caller's services
    GET  /pipelines/runs/{run_id}   a run and its log; …/log/live: the log as it comes
    POST /pipelines/runs/{run_id}/rerun, …/cancel
    GET  /static/…                  the stylesheet and htmx: every asset is Baepo's own

Anything else (`/api/…`, `/metrics`, `/v2`) is the API's or the registry's, which answer an
unknown path with their JSON 404 as before.
"""

from __future__ import annotations

from pathlib import Path

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from baepo.console import configuration, pipelines, relays, services
from baepo.console.signing import Signing
from baepo.console.visits import Console

STATIC = Path(__file__).parent / "static"


def console_routes(key: bytes, registry_hosts: tuple[str, ...]) -> list[BaseRoute]:
    """`key` signs the forms' CSRF tokens (keep it secret, and across restarts so that open
    forms stay good); `registry_hosts` are the hosts images in Baepo's registry are named by,
    the one a person pushes to first."""
    console = Console(key, registry_hosts)
    page = console.page
    signing = Signing(console)
    routes: list[BaseRoute] = [
        Route("/", page(services.dashboard), methods=["GET"]),
        Route("/sign-in", signing.form, methods=["GET"]),
        Route("/sign-in", signing.sign_in, methods=["POST"]),
        Route("/sign-out", page(signing.sign_out), methods=["POST"]),
        Route("/new", page(services.new_service), methods=["GET"]),
        Route("/new", page(services.create_service), methods=["POST"]),
        Route("/services/{name}", page(services.service_page), methods=["GET"]),
        Route("/services/{name}/deploy", page(services.deploy), methods=["POST"]),
        Route("/services/{name}/rollback", page(services.rollback), methods=["POST"]),
        Route("/services/{name}/configuration", page(configuration.edit_page), methods=["GET"]),
        Route("/services/{name}/configuration", page(configuration.save), methods=["POST"]),
        Route("/services/{name}/domains", page(configuration.add_domain), methods=["POST"]),
        Route(
            "/services/{name}/domains/remove", page(configuration.remove_domain), methods=["POST"]
        ),
        Route("/services/{name}/logs/live", page(relays.service_log), methods=["GET"]),
        Route("/services/{name}/pipeline", page(pipelines.service_pipeline), methods=["GET"]),
        Route("/services/{name}/pipeline", page(pipelines.change_settings), methods=["POST"]),
        Route(
            "/services/{name}/pipeline/webhook-secret",
            page(pipelines.new_webhook_secret),
            methods=["POST"],
        ),
        Route("/pipelines", page(pipelines.all_runs), methods=["GET"]),
        Route("/pipelines/runs/{run_id}", page(pipelines.run_page), methods=["GET"]),
        Route("/pipelines/runs/{run_id}/log/live", page(relays.run_log), methods=["GET"]),
        Route("/pipelines/runs/{run_id}/rerun", page(pipelines.rerun), methods=["POST"]),
        Route("/pipelines/runs/{run_id}/cancel", page(pipelines.cancel), methods=["POST"]),
    ]
    for action in services.ACTIONS:
        confirm, act = services.action_pages(action)
        path = f"/services/{{name}}/{action.verb}"
        routes += [
            Route(path, page(confirm), methods=["GET"]),
            Route(path, page(act), methods=["POST"]),
        ]
    routes.append(Mount("/static", StaticFiles(directory=STATIC), name="static"))
    return routes
