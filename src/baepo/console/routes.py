"""The console's routes, for the composition root to add to the API app (`create_api`'s
`routes`): plain Starlette routes, kept out of the API's OpenAPI document.

    GET  /                          the dashboard (to /sign-in when not signed in)
    GET  /sign-in, POST /sign-in    sign in;  POST /sign-out
    GET  /new, POST /new            create a service
    GET  /services/{name}           a service
    POST /services/{name}/deploy    deploy its image again, or another
    POST /services/{name}/rollback  back to a revision
    GET  /services/{name}/{action}  confirm pause, resume, delete; POST: do it
    GET  /registry                  repositories;  GET, POST /registry/-/gc: collect garbage
    GET  /registry/{repository}     its tags, images and pushes;  POST …/-/public,
                                    …/-/tag-mutability: change who may pull it, which tags move
    GET  /registry/{repository}/-/images/{digest}           an image: layers, referrers
    GET  /registry/{repository}/-/…/delete                  confirm deleting a tag, an image,
                                                            the repository; POST: do it
    GET  /settings                  API tokens, access keys, users, the CA;  POST
                                    /settings/tokens, …/access-keys, …/users: make one
    GET  /settings/tokens/{name}/revoke, /settings/access-keys/{id}/delete,
         /settings/users/{name}/delete: confirm; POST: do it
    GET  /services/{name}/configuration, POST   edit its configuration
    POST /services/{name}/domains, …/domains/remove   add or remove a custom domain
    GET  /services/{name}/logs/live the log as it comes (Server-Sent Events, relays.py)
    GET  /services/{name}/pipeline, POST        its pipeline: git remote, webhooks, settings
    POST /services/{name}/pipeline/webhook-secret   a new webhook secret, shown once
    GET  /pipelines                 the runs of all the caller's services
    GET  /pipelines/runs/{run_id}   a run and its log; …/log/live: the log as it comes
    POST /pipelines/runs/{run_id}/rerun, …/cancel
    GET  /static/…                  the stylesheet and htmx: every asset is Baepo's own
    *    anything else              a browser asking for a page: "Not found" as HTML

Anything else (`/api/…`, `/metrics`, `/v2`) is the API's or the registry's, which answer an
unknown path with their JSON 404 as before (see `missing.py`).
"""

from __future__ import annotations

from pathlib import Path

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from baepo.console import configuration, pipelines, registry, relays, services, settings
from baepo.console.deletions import deletion_pages
from baepo.console.missing import not_found_route
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
    routes += [
        Route("/registry", page(registry.repositories), methods=["GET"]),
        Route("/registry/-/gc", page(registry.gc_form), methods=["GET"]),
        Route("/registry/-/gc", page(registry.gc), methods=["POST"]),
        Route("/registry/{name:path}/-/images/{digest}", page(registry.image), methods=["GET"]),
        Route("/registry/{name:path}/-/public", page(registry.set_public), methods=["POST"]),
        Route(
            "/registry/{name:path}/-/tag-mutability",
            page(registry.set_tag_mutability),
            methods=["POST"],
        ),
        Route("/settings", page(settings.settings), methods=["GET"]),
        Route("/settings/tokens", page(settings.create_token), methods=["POST"]),
        Route("/settings/users", page(settings.create_user), methods=["POST"]),
        Route("/settings/access-keys", page(settings.create_access_key), methods=["POST"]),
    ]
    for path, describe in (*registry.DELETIONS, *settings.DELETIONS):
        confirm, delete = deletion_pages(describe)
        routes += [
            Route(path, page(confirm), methods=["GET"]),
            Route(path, page(delete), methods=["POST"]),
        ]
    # A repository's name has slashes: its page after every other path under /registry.
    routes.append(Route("/registry/{name:path}", page(registry.repository), methods=["GET"]))
    routes.append(Mount("/static", StaticFiles(directory=STATIC), name="static"))
    routes.append(not_found_route(console))  # last: what no other route answers
    return routes
