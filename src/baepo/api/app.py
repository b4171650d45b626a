"""The HTTP edge: one ASGI app for the registry (`/v2`), the token endpoint (`/auth/token`),
the REST API (`/api/v1`, OpenAPI at `/api/v1/openapi.json`), Prometheus' `/metrics`, and the
AWS APIs (`POST /` with `X-Amz-Target`, the aws room's endpoint)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

import baepo
from baepo.api import errors
from baepo.api.access_keys import access_keys_router
from baepo.api.accounts import accounts_router
from baepo.api.activation import activation_routes
from baepo.api.autoscaling import autoscaling_router
from baepo.api.images import ImageCheck, Resolver, resolve
from baepo.api.metrics import metrics_router
from baepo.api.pipelines import pipelines_router
from baepo.api.registry import registry_router
from baepo.api.repository_policies import repository_policies_router
from baepo.api.security import Identity, identify
from baepo.api.services import services_router
from baepo.api.text import RefuseNul
from baepo.auth import AccessKeys, Auth, token_routes
from baepo.clock import SystemClock
from baepo.control import Services
from baepo.metrics import MetricsStore
from baepo.pipelines import Runs, Settings
from baepo.registry import LifecyclePolicies, Registry
from baepo.router import CertificateAuthority


def create_api(
    auth: Auth,
    registry: Registry,
    services: Services,
    ca: CertificateAuthority,
    *,
    resolver: Resolver = resolve,
    metrics: MetricsStore | None = None,
    activation: tuple[str, Callable[[str], None]] | None = None,
    pipelines: tuple[Runs, Settings] | None = None,
    access_keys: AccessKeys | None = None,
    lifecycle: LifecyclePolicies | None = None,
    routers: Sequence[APIRouter] = (),
    routes: Sequence[BaseRoute] = (),
) -> FastAPI:
    """`resolver` finds the addresses of foreign registries' hosts (for `ImageCheck`);
    `metrics` are the services' metrics (`/metrics`; none kept when not given);
    `activation` is the router activator's secret and what its notice calls (the service);
    `pipelines` the runs and their settings (their API); `access_keys` the API tokens' AWS
    access keys (their API); `lifecycle` the registry's lifecycle policies applied (their
    preview and apply routes); `routers` and `routes` more edges
    (webhooks; the git remote, kept out of the OpenAPI document)."""
    api = FastAPI(
        title="Baepo",
        version=baepo.__version__,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
        responses=errors.ERROR_RESPONSES,
    )
    errors.install(api)
    api.add_middleware(RefuseNul)

    async def who(request: Request) -> Identity:
        return await identify(request, auth)

    @api.get("/api/v1/health", tags=["system"])
    async def health() -> dict[str, str]:
        return {"status": "ok", "version": baepo.__version__}

    api.include_router(accounts_router(auth, who))
    if access_keys is not None:
        api.include_router(access_keys_router(access_keys, who))
    api.include_router(registry_router(registry, who))
    api.include_router(repository_policies_router(registry, who, lifecycle))
    images = ImageCheck(services.registry, registry.is_public, resolver)
    api.include_router(services_router(services, who, images))
    api.include_router(autoscaling_router(services.configurations, who))
    if pipelines is not None:
        api.include_router(pipelines_router(*pipelines, who))
    for router in routers:
        api.include_router(router)
    api.include_router(metrics_router(metrics or MetricsStore(SystemClock()), services, who))

    @api.get("/api/v1/ca", tags=["system"], response_class=PlainTextResponse)
    async def ca_certificate() -> str:
        """The local CA's root certificate (PEM): trust it to trust `https://*.<domain>`."""
        return await run_in_threadpool(ca.ca_pem)

    api.router.routes.extend(token_routes(auth, registry.is_public))
    if activation is not None:
        api.router.routes.extend(activation_routes(*activation))
    api.router.routes.extend(routes)
    return api


class Dispatcher:
    """Sends `/v2` to the registry app untouched, AWS API calls (`/` with an `X-Amz-Target`
    header, where the aws CLI and boto3 send them with `--endpoint-url` set to Baepo's URL) to
    the AWS endpoint, and everything else to the API."""

    def __init__(self, registry_app: ASGIApp, api: ASGIApp, aws: ASGIApp | None = None) -> None:
        self.registry_app = registry_app
        self.api = api
        self.aws = aws

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path == "/v2" or path.startswith("/v2/"):
                await self.registry_app(scope, receive, send)
                return
            if self.aws is not None and path == "/" and _has_header(scope, b"x-amz-target"):
                await self.aws(scope, receive, send)
                return
        await self.api(scope, receive, send)


def _has_header(scope: Scope, name: bytes) -> bool:
    return any(key == name for key, _ in scope["headers"])
