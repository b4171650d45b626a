"""The composition root: reads the configuration, builds every room, serves, and stops.

Nothing imports this module except the `baepo up` command.

What runs: one uvicorn server (registry `/v2`, token endpoint, REST API `/api/v1`, the web
console at `/`) and, in its event loop, the reconciler; beside it the HAProxy that Baepo starts
(or adopts) as its data plane. On SIGTERM the control plane stops; the data plane and the
services' containers keep serving, and the next `baepo up` adopts them (containers carry
labels, HAProxy its pidfile). On PostgreSQL several processes may share the database: the one
holding the control lease runs the reconciler and the expiries (`baepo/leadership.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import uvicorn
from fastapi import APIRouter
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from baepo import memory
from baepo.api.app import Dispatcher, create_api
from baepo.api.git import git_routes
from baepo.api.hooks import HookLimits, HookTarget, hooks_router
from baepo.api.images import ImageCheck
from baepo.auth import ADMIN, AccessKeys, Auth, NotFound, load_or_create_key, rights
from baepo.aws import AwsEndpoint, account_id
from baepo.aws.apprunner import apprunner_service
from baepo.aws.ecr import ecr_service
from baepo.clock import Clock, SystemClock
from baepo.config import Config
from baepo.connections import (
    Limits,
    bounded_protocol,
    default_max_connections,
    raise_descriptor_limit,
)
from baepo.console import console_routes
from baepo.control import (
    LABEL_INSTALLATION,
    SYSTEM,
    Caller,
    ControlError,
    ImageName,
    LogKeeper,
    LogLimits,
    NetworkProber,
    Quota,
    Reconciler,
    RegistryLink,
    Scaling,
    SecretBox,
    ServiceNotFound,
    Services,
    SpecChange,
    Timing,
    load_or_create_secret_key,
)
from baepo.events import EventBus
from baepo.executor import DaemonExecutor
from baepo.forwarding import Leader, LeaderForwarding, holder_for
from baepo.keyfiles import load_or_create, write_private
from baepo.leadership import Leadership
from baepo.metrics import AccessLog, MetricsStore, Sampler, UsageReader
from baepo.pipelines.apprunner import DEFAULT_BASE_IMAGES
from baepo.pipelines.builds import Builder
from baepo.pipelines.deliveries import Deliveries
from baepo.pipelines.errors import PipelineError, PipelineSpecError
from baepo.pipelines.git_http import BackendLimits
from baepo.pipelines.git_remote import GitRepositories
from baepo.pipelines.pushes import branch_filter
from baepo.pipelines.runner import Runner
from baepo.pipelines.runs import Runs
from baepo.pipelines.settings import Settings
from baepo.pipelines.spec import parse_pipeline
from baepo.pipelines.webhooks import PushEvent
from baepo.references import InvalidReference
from baepo.registry import InUse, LifecyclePolicies, Registry, RegistryError, create_app
from baepo.router import (
    AcmeIssuer,
    AcmeSettings,
    CertificateBroker,
    ChallengeResponder,
    HAProxyRouter,
    RouterError,
    RouterSettings,
    RouterSupervisor,
    SharedRouter,
    SigningChild,
    running_haproxy,
)
from baepo.router.shared import start_watchdog
from baepo.runtime import DockerEngine, Edge, Engine, SwarmEngine
from baepo.schema import schema
from baepo.storage import FilesystemDriver, StorageDriver, StorageError
from baepo.store import Database, StoreError
from baepo.store.leases import Lease

log = logging.getLogger("baepo")

SAMPLE_SERVICE = "hello"
IO_THREADS = 32
MEMORY_TRIM_S = 15.0
ROUTER_RETRY_S = 10
ENGINE_TOKEN = "baepo-engine"
# A SIGTERM ends the process within SHUTDOWN_S whatever is under way: open requests get
# DRAIN_S, the control plane's tasks TASKS_S, blocking calls in threads what is left; past
# SHUTDOWN_S the process exits anyway (what was cut short is redone at the next start).
SHUTDOWN_S = 10.0
DRAIN_S = 4
TASKS_S = 3.0
"""The API token the engine pulls images from Baepo's registry with (kept in secrets/)."""
PERIODIC_TASKS = (
    "certificates",
    "router-start",
    "uploads",
    "memory",
    "sampler",
    "usage",
    "lifecycle",
    "leadership",
    "routes",
)


@dataclass
class Pipelines:
    """The pipelines room and the HTTP edges that feed it: the git remote (`/git/<service>.git`
    and its hook's `/internal/pipelines/...`), the webhooks, the runs API."""

    runs: Runs
    settings: Settings
    routes: list[BaseRoute]
    """The git remote's routes (outside the OpenAPI document)."""
    hooks: APIRouter

    def start(self) -> None:
        self.runs.start()

    def stop(self) -> None:
        self.runs.stop()


def assemble_pipelines(
    *,
    db: Database,
    engine: Engine,
    auth: Auth,
    services: Services,
    box: SecretBox,
    link: RegistryLink,
    clock: Clock,
    may_pull: Callable[[str, str], bool],
    git_dir: Path,
    directory: Path,
    internal_url: str,
    runtime_images: Mapping[str, str],
    workers: int,
    hook_limits: HookLimits,
    git_limits: BackendLimits,
) -> Pipelines:
    settings = Settings(db=db, secrets=box, services=services, clock=clock)
    runner = Runner(
        engine=engine,
        builder=Builder(engine, link, clock),
        services=services,
        deploy_branch=settings.deploy_branch,
        clock=clock,
        registry=link,
        may_pull=may_pull,
        base_images={**DEFAULT_BASE_IMAGES, **runtime_images},
        installation=box.fingerprint,
    )
    runs = Runs(
        db=db, services=services, runner=runner, clock=clock, directory=directory, workers=workers
    )

    def incarnation(name: str, caller: Caller) -> str | None:
        try:
            service = services.identity(name, caller=caller)
        except ServiceNotFound:
            return None
        return f"{service.owner} {service.created_at.isoformat()}"

    spool = directory / "incoming"
    shutil.rmtree(spool, ignore_errors=True)  # trees of pushes cut short by a stop
    wanted = branch_filter(settings.deploy_branch, parse_pipeline, (PipelineSpecError,))
    routes = git_routes(
        auth,
        incarnation,
        GitRepositories(git_dir),
        runs,
        wanted,
        spool=spool,
        limits=git_limits,
        internal_url=internal_url,
        refused=(PipelineError, ControlError),
    )

    def target(name: str) -> HookTarget | None:
        try:
            current = settings.get(name, caller=SYSTEM)
            secret = settings.webhook_secret(name)
        except (ServiceNotFound, PipelineError):
            return None
        return HookTarget(secret=secret, source_url=current.source_url)

    def submit(name: str, event: PushEvent, tar: Path) -> str | None:
        if not wanted(name, tar, event.branch):
            return None
        run = runs.submit(
            name,
            source=tar,
            branch=event.branch,
            commit=event.commit,
            trigger=event.provider,
            caller=Caller(f"webhook:{event.provider}"),
        )
        return run.id

    hooks = hooks_router(target, submit, Deliveries(db, clock), directory / "hooks", hook_limits)
    return Pipelines(runs, settings, routes, hooks)


class StartupError(Exception):
    """Baepo cannot start with this configuration (shown as one line)."""


@dataclass
class Baepo:
    config: Config
    db: Database
    bus: EventBus
    auth: Auth
    registry: Registry
    router: HAProxyRouter
    ca: SigningChild
    reconciler: Reconciler
    sampler: Sampler
    usage: UsageReader
    access_log: AccessLog
    metrics: MetricsStore
    services: Services
    pipelines: Pipelines
    app: ASGIApp
    generated_password: str | None
    responder: ChallengeResponder | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    supervisor: RouterSupervisor | None = None
    executor: DaemonExecutor = field(default_factory=lambda: DaemonExecutor(IO_THREADS, "baepo-io"))
    lifecycle: LifecyclePolicies | None = None
    leadership: Leadership | None = None
    """None on SQLite: its one process leads."""
    shared: SharedRouter | None = None
    """The routes shared with other processes on the same database (None on SQLite)."""
    watchdog: subprocess.Popen[bytes] | None = None
    """The router's watchdog this process started (router/watchdog.py), if any."""

    async def startup(self) -> None:
        # The loops run their blocking calls (engine, router, database) in the loop's default
        # executor; asyncio sizes it by CPUs (6 threads on 2 cores), too few for many services,
        # and joins its threads at exit however long a hung call takes (see baepo/executor.py).
        asyncio.get_running_loop().set_default_executor(self.executor)
        self._start_access_log()
        # The registry and the API serve even when the data plane cannot start (a port taken,
        # HAProxy missing): the router is retried in the background, and operations that need
        # it say so in their logs until it runs.
        if not await self._start_router():
            self.tasks.append(asyncio.create_task(self._retry_router(), name="router-start"))
        if self.leadership is None:
            self.lead()
        else:
            self.tasks.append(asyncio.create_task(self.leadership.run(), name="leadership"))
        if self.shared is not None:
            self.tasks.append(asyncio.create_task(self.shared.run(), name="routes"))
        self.tasks.append(asyncio.create_task(self._renew_certificates(), name="certificates"))
        self.tasks.append(asyncio.create_task(self._give_memory_back(), name="memory"))
        self.tasks.append(asyncio.create_task(self.usage.run(), name="usage"))
        if self.leadership is None:
            await self._start_pipelines()
        if self.config.sample_image:
            await asyncio.to_thread(self._ensure_sample, self.config.sample_image)

    def lead(self) -> None:
        """Run the loops that act on the world: one process at a time does."""
        if self.shared is not None:
            self.shared.leading = True  # from now on it publishes the routes it puts
        self.tasks.append(asyncio.create_task(self.reconciler.run(), name="reconciler"))
        if self.leadership is not None:  # on SQLite, startup starts them
            self.tasks.append(asyncio.create_task(self._start_pipelines(), name="pipelines"))
        self.tasks.append(asyncio.create_task(self._expire_uploads(), name="uploads"))
        if self.lifecycle is not None:
            self.tasks.append(asyncio.create_task(self.lifecycle.run(), name="lifecycle"))

    async def _start_pipelines(self) -> None:
        """Runs cut short by a stop are marked failed; the queue is picked up. The leader's
        alone: the runs' files are on its machine (baepo/forwarding.py)."""
        try:
            await asyncio.to_thread(self.pipelines.start)
        except PipelineError as exc:
            log.error("pipelines cannot run: %s", exc)

    def lose(self) -> None:
        """Another process may lead now: stop acting at once, then stop the process (it exits
        with an error: its supervisor starts it again, as a follower)."""
        self.reconciler.stop()
        for task in self.tasks:
            if task.get_name() in ("uploads", "lifecycle"):
                task.cancel()
        os.kill(os.getpid(), signal.SIGTERM)

    def _start_access_log(self) -> None:
        """Request latencies come from HAProxy's request log: its socket is bound before the
        router starts, so that the first requests count."""
        try:
            self.access_log.start()
        except OSError as exc:
            log.warning("no request latencies: cannot bind the router's request log: %s", exc)

    def _ensure_sample(self, image: str) -> None:
        """The sample service a newcomer sees first: `hello`, created once."""
        try:
            self.services.describe(SAMPLE_SERVICE)
            return
        except ServiceNotFound:
            pass
        try:
            service, _ = self.services.create(
                SpecChange(
                    {
                        "name": SAMPLE_SERVICE,
                        "image": image,
                        "port": 8080,
                        "cpu": 0.25,
                        "memory": 512,
                        "health_check": {"protocol": "http", "path": "/healthz"},
                    }
                )
            )
        except ControlError as exc:
            log.warning("could not create the sample service: %s", exc)
            return
        log.info(
            "sample service %s: %s (trust the CA with `baepo ca`)", SAMPLE_SERVICE, service.url
        )

    async def _start_router(self) -> bool:
        try:
            await asyncio.to_thread(self.router.start)
        except RouterError as exc:
            log.error(
                "cannot start the router (HAProxy): %s; retrying every %d s", exc, ROUTER_RETRY_S
            )
            return False
        log.info(
            "router on http://*:%d and https://*:%d for *.%s (pid %s)",
            self.config.http_port,
            self.config.https_port,
            self.config.domain,
            self.router.pid,
        )
        # From now on a HAProxy that dies (crash, kill -9) is started again within a second.
        self.supervisor = RouterSupervisor(self.router)
        self.supervisor.start()
        if self.shared is not None:  # other routers serve too: one left alone stops in time
            paths = self.router.paths
            health = f"http://{self.config.api_address}/api/v1/health"
            self.watchdog = start_watchdog(paths.run_dir, paths.pidfile, health)
        # The router's load, once a second, feeds the autoscalers (and the metrics).
        self.tasks.append(asyncio.create_task(self.sampler.run(), name="sampler"))
        self.reconciler.wake()
        return True

    async def _retry_router(self) -> None:
        while True:
            await asyncio.sleep(ROUTER_RETRY_S)
            if await self._start_router():
                return

    async def _renew_certificates(self) -> None:
        """Hourly: re-issue certificates near expiry, retry ACME names that failed."""
        while True:
            await asyncio.sleep(3600)
            try:
                renewed = await asyncio.to_thread(self.router.renew_certificates)
            except RouterError as exc:
                log.warning("certificate renewal failed: %s", exc)
                continue
            if renewed:
                log.info("renewed certificates: %s", ", ".join(renewed))

    async def _expire_uploads(self) -> None:
        """Abandoned upload sessions go on their own, a quarter of their lifetime late at most."""
        ttl = self.config.upload_ttl_s
        while True:
            await asyncio.sleep(max(0.5, min(3600.0, ttl / 4)))
            try:
                report = await asyncio.to_thread(self.registry.expire_uploads, ttl)
            except RegistryError as exc:
                log.warning("could not expire upload sessions: %s", exc)
                continue
            if report.uploads:
                log.info(
                    "expired %d upload sessions (%d bytes)",
                    len(report.uploads),
                    report.upload_bytes,
                )

    async def _give_memory_back(self) -> None:
        """After a burst of load, resident memory goes back near its idle figure."""
        while True:
            await asyncio.sleep(MEMORY_TRIM_S)
            await asyncio.to_thread(memory.trim)

    async def shutdown(self) -> None:
        """Stop the control plane within TASKS_S; blocking calls still running in threads then
        get what is left of the budget (the loop's executor shutdown waits for them)."""
        started = time.monotonic()
        self.executor.grace_deadline = started + SHUTDOWN_S - DRAIN_S - 1
        self.reconciler.stop()
        await asyncio.to_thread(self.pipelines.stop)
        if self.supervisor is not None:
            await asyncio.to_thread(self.supervisor.stop, TASKS_S)
        for task in self.tasks:
            if task.get_name() in PERIODIC_TASKS:
                task.cancel()  # they only sleep, read and retry
        if self.tasks:
            _, late = await asyncio.wait(self.tasks, timeout=TASKS_S)
            for task in late:
                log.warning("%s did not stop in %.0f s: cut short", task.get_name(), TASKS_S)
                task.cancel()
            await asyncio.wait(self.tasks, timeout=0.5)
        if self.leadership is not None:
            await asyncio.to_thread(self.leadership.release)
        if self.responder is not None:
            self.responder.stop()
        self.access_log.stop()
        # The local CA's signer ends with this process anyway (its stdin closes): ended now,
        # unless a signature under way holds it past the budget.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.to_thread(self.ca.close), TASKS_S)
        log.info("control plane stopped; the router and the services keep serving")

    def abandon(self) -> None:
        """Baepo did not start after all: stop what this run started (a HAProxy it started
        itself, the challenge responder, the local CA's signer), so that nothing is left
        behind."""
        if self.supervisor is not None:
            self.supervisor.stop()
        if not self.router.adopted:
            self.router.stop()
        if self.responder is not None:
            self.responder.stop()
        self.access_log.stop()
        self.ca.close()


def runtime_engine(config: Config) -> Engine:
    """The one engine at `docker_host`, or the Docker Swarm it manages when an edge image is
    configured (docs/swarm.md)."""
    if config.swarm_edge_image is None:
        return DockerEngine(config.docker_host)
    edge = Edge(config.docker_host, config.swarm_edge_image)
    return SwarmEngine(config.docker_host, edge=edge, node_engines=dict(config.swarm_node_engines))


def engine_credentials(auth: Auth, secrets_dir: Path) -> tuple[str, str]:
    """The credential the engine pulls Baepo's own images with: an admin API token created
    on first start and kept (0600) in the secrets directory."""
    path = secrets_dir / "engine-token"
    try:
        return ("token", path.read_text().strip())
    except FileNotFoundError:
        pass
    with contextlib.suppress(NotFound):
        auth.delete_token(ADMIN, ENGINE_TOKEN)
    token = auth.create_token(ADMIN, ENGINE_TOKEN)
    assert token.secret is not None
    write_private(path, token.secret.encode())
    return ("token", token.secret)


def router_settings(config: Config, acme_challenge_address: str | None = None) -> RouterSettings:
    return RouterSettings(
        state_dir=config.router_dir,
        domain=config.domain,
        http_port=config.http_port,
        https_port=config.https_port,
        run_dir=config.router_run_dir,
        acme_challenge_address=acme_challenge_address,
        registry_hostname=config.registry_hostname,
        registry_address=config.api_address,
        activator_address=config.api_address,
        activator_token_file=activator_token_file(config),
    )


def activator_token_file(config: Config) -> Path:
    """Where the secret lives that the router's activator presents to Baepo (0600)."""
    return config.secrets_dir / "activator-token"


def console_key(config: Config) -> bytes:
    """The key the console's CSRF tokens are signed with, made at the first start and kept:
    a form opened before a restart still posts after it."""
    return load_or_create(config.secrets_dir / "console.key", lambda: secrets.token_bytes(32))


def activator_secret(config: Config) -> str:
    """The activator's secret, made at the first start and kept: an adopted HAProxy, which
    read it when it loaded its script, still presents the right one after a restart."""
    made = load_or_create(
        activator_token_file(config), lambda: secrets.token_urlsafe(32).encode() + b"\n"
    )
    return made.decode().strip()


def check_ports(config: Config) -> None:
    """Fail before anything starts if a port Baepo must listen on is taken (or not allowed).

    The router's ports are skipped when the HAProxy of a previous Baepo on this data
    directory still holds them: it is adopted, not started.
    """
    try:
        settings = router_settings(config)
    except RouterError as exc:  # a --domain or --registry-host that is no host name
        raise StartupError(f"invalid router settings: {exc}") from exc
    wanted = [(config.host, config.port, "--port, the registry and API")]
    if running_haproxy(settings) is None:
        wanted += [
            ("0.0.0.0", config.http_port, "--http-port, the router's HTTP"),
            ("0.0.0.0", config.https_port, "--https-port, the router's HTTPS"),
        ]
    if config.acme_directory:
        wanted.append(
            ("127.0.0.1", config.acme_challenge_port, "--acme-challenge-port, ACME's http-01")
        )
    for host, port, what in wanted:
        problem = _bind_problem(host, port)
        if problem is not None:
            raise StartupError(f"cannot listen on {host}:{port} ({what}): {problem}")


def _bind_problem(host: str, port: int) -> str | None:
    """Why a listening socket cannot be bound to host:port (as uvicorn and HAProxy bind it,
    with SO_REUSEADDR), or None if it can."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"unknown address: {exc.strerror}"
    family, kind, proto, _, address = infos[0]
    try:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen()
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def storage_driver(config: Config) -> StorageDriver:
    """The registry's blob storage: the data directory, or an S3 bucket (checked now: a
    wrong secret or a missing bucket stops the start with one line)."""
    if config.storage == "filesystem":
        return FilesystemDriver(config.blob_dir)
    if config.storage != "s3":
        raise StartupError(f"--storage must be filesystem or s3, not {config.storage!r}")
    if not config.s3_bucket:
        raise StartupError("--storage s3 needs --s3-bucket")
    from baepo.storage import S3Driver, S3Settings  # boto3: only where S3 is used

    settings = S3Settings(
        config.s3_bucket,
        config.s3_endpoint,
        config.s3_region,
        config.s3_access_key,
        config.s3_secret_key,
        config.s3_prefix,
        config.s3_redirect,
    )
    try:
        return S3Driver.connect(settings)
    except StorageError as exc:
        raise StartupError(f"cannot use S3 storage: {exc}") from exc


def owner_may_pull(auth: Auth, registry: Registry) -> Callable[[str, str], bool]:
    """Whether a service's owner (a user or a team namespace) may pull a repository of
    Baepo's registry now, by the same rights a `docker pull` of theirs gets."""

    def may_pull(owner: str, repository: str) -> bool:
        admins = {user.name for user in auth.users() if user.is_admin}
        caller = rights.Caller(owner, is_admin=owner in admins)
        return rights.may_run_from_registry(caller, repository, registry.is_public(repository))

    return may_pull


def registry_images_in_use(services: Services, link: RegistryLink, registry: Registry) -> InUse:
    """The digests of a repository of Baepo's registry that a live service runs or may run
    again (lifecycle policies never expire them): revisions' pinned digests, and what a tag a
    service names points to now."""

    def in_use(repository: str) -> set[str]:
        found = set()
        for image, digest in services.images_in_use():
            try:
                name = ImageName.parse(image)
            except InvalidReference:
                continue
            if not link.owns(name) or name.path != repository:
                continue
            pinned = digest or name.digest
            if pinned:
                found.add(pinned)
                continue
            with contextlib.suppress(RegistryError):
                found.add(registry.resolve(repository, name.effective_tag))
        return found

    return in_use


def build(config: Config, clock: Clock | None = None) -> Baepo:
    clock = clock or SystemClock()
    # Keys, the database and every pushed image live below: only Baepo's user may enter (a
    # directory made by an older version may still be 0755).
    config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    config.data_dir.chmod(0o700)
    config.secrets_dir.mkdir(mode=0o700, exist_ok=True)
    db = Database(config.database_url)
    db.migrate(schema())
    for name in ("baepo.db", "baepo.db-wal", "baepo.db-shm"):
        with contextlib.suppress(FileNotFoundError):
            (config.data_dir / name).chmod(0o600)
    bus = EventBus()
    auth = Auth(db, load_or_create_key(config.secrets_dir / "token.key"), clock)
    generated = auth.ensure_admin(config.admin_password)
    # Its upload holds name it among the processes sharing the database (none on SQLite).
    process = None if db.is_sqlite else config.advertised_address
    registry = Registry(db, storage_driver(config), bus, clock, process=process)
    registry.release_upload_holds()

    # The local CA signs in a child process started when there is work: `cryptography`
    # (about 15 MiB resident once loaded) stays out of the server.
    ca = SigningChild(config.data_dir / "ca", clock)
    responder, issuer = None, None
    if config.acme_directory:
        # http-01 answers: HAProxy's HTTP frontend forwards /.well-known/acme-challenge/ here.
        responder = ChallengeResponder("127.0.0.1", config.acme_challenge_port)
        responder.start()
        issuer = AcmeIssuer(
            AcmeSettings(
                config.acme_directory,
                config.data_dir / "acme",
                email=config.acme_email,
                ca_bundle=config.acme_ca_bundle,
            ),
            responder,
        )
    router = HAProxyRouter(
        router_settings(config, responder.address if responder else None),
        CertificateBroker(ca, [config.domain], clock, public=issuer),
        clock,
    )
    engine_credentials(auth, config.secrets_dir)  # made at the first start, kept after

    def credentials() -> tuple[str, str]:
        # Read at each pull (a file read), so a token rotated in the file is picked up.
        return engine_credentials(auth, config.secrets_dir)

    link = RegistryLink.of(config.registry_hosts, credentials, config.pull_address)
    box = SecretBox(load_or_create_secret_key(config.secrets_dir / "control.key"))
    access_keys = AccessKeys(db, box, clock)
    engine = runtime_engine(config)
    holder = holder_for(config.advertised_address, os.getpid(), secrets.token_hex(4))

    def demand(service: str) -> None:
        """Requests of `service` wait at a router's activator (this one's, or another's)."""
        scaling.demand(service)
        reconciler.wake()

    shared = None
    if not db.is_sqlite:
        # Several processes may share the database, each with its router behind one load
        # balancer: the leader publishes the routes, every router carries them (router/shared.py).
        peers = router.settings.paths.run_dir / "peers"  # for the router's watchdog
        shared = SharedRouter(router, db, holder, clock, demand, peers)
    # Each service's autoscaler, fed by the sampler (started with the router) once a second
    # and, at zero, by the router's activator when requests wait; the metrics kept for people,
    # fed by the sampler, the engine and HAProxy's request log.
    scaling = Scaling(clock)
    quota = Quota(config.max_services_per_user, config.max_instances_per_user)
    metrics = MetricsStore(clock)
    access_log = AccessLog(router.settings.paths.access_socket, metrics.record_request)
    keeper = LogKeeper(
        config.logs_dir, engine, LogLimits(config.kept_log_lines, config.kept_log_bytes)
    )
    reconciler = Reconciler(
        db=db,
        engine=engine,
        router=shared or router,
        prober=NetworkProber(),
        clock=clock,
        secrets=box,
        domain=config.domain,
        registry=link,
        timing=Timing(deploy_timeout_s=config.deploy_timeout_s),
        pushes=registry,
        may_pull=owner_may_pull(auth, registry),
        scaling=scaling,
        logs=keeper,
        quota=quota,
    )
    reconciler.subscribe(bus)
    usage = UsageReader(
        engine,
        {LABEL_INSTALLATION: box.fingerprint},
        clock,
        record=metrics.record_usage,
        busy=metrics.busy,
        listing=reconciler.listing,  # listed again only when the engine reports a change
    )
    sampler = Sampler(
        shared.load if shared else router.load,
        clock,
        scaling.observe,
        record=metrics.record_samples,
        wake=reconciler.wake,
    )
    services = Services(
        db=db,
        engine=engine,
        secrets=box,
        clock=clock,
        domain=config.domain,
        registry=link,
        reconciler=reconciler,
        https_port=config.https_port,
        reserved_names=(config.registry_host,) if config.registry_host else (),
        quota=quota,
        logs=keeper,
    )

    def activate(service: str) -> None:
        demand(service)
        if shared is not None:
            shared.waiting(service)  # whoever leads hears of it

    pipelines = assemble_pipelines(
        db=db,
        # Steps bind-mount their workspace, which is on this machine: they run on its own
        # engine, also when services run on the swarm it manages.
        engine=DockerEngine(config.docker_host) if config.swarm_edge_image else engine,
        auth=auth,
        services=services,
        box=box,
        link=link,
        clock=clock,
        may_pull=owner_may_pull(auth, registry),
        git_dir=config.git_dir,
        directory=config.pipelines_dir,
        internal_url=f"http://{config.api_address}",
        runtime_images=dict(config.runtime_images),
        workers=config.pipeline_workers,
        hook_limits=HookLimits(allow_private=config.webhook_private_sources),
        git_limits=BackendLimits(config.git_max_push_bytes, config.git_timeout_s),
    )
    lifecycle = LifecyclePolicies(registry, registry_images_in_use(services, link, registry), clock)
    api = create_api(
        auth,
        registry,
        services,
        ca,
        metrics=metrics,
        activation=(activator_secret(config), activate),
        pipelines=(pipelines.runs, pipelines.settings),
        access_keys=access_keys,
        lifecycle=lifecycle,
        routers=(pipelines.hooks,),
        routes=[*pipelines.routes, *console_routes(console_key(config), config.registry_hosts)],
    )
    images = ImageCheck(services.registry, registry.is_public)
    aws_services = [
        ecr_service(registry, auth.key_password, lifecycle),
        apprunner_service(services, images.refusal, db),
    ]
    aws = AwsEndpoint(aws_services, access_keys, clock, account_id(box.fingerprint))
    app: ASGIApp = Dispatcher(create_app(registry, auth), api, aws)
    leadership: Leadership | None = None
    if not db.is_sqlite:
        lease = Lease(db, "control", holder, clock)
        leads = Leadership(lease, clock, lambda: baepo.lead(), lambda: baepo.lose())
        # The git remote and the pipelines keep files where they run: the leader's.
        leader = Leader(lease, lambda: leads.state == "leader", clock)
        app = LeaderForwarding(app, leader, config.git_timeout_s)
        leadership = leads
    baepo = Baepo(
        config,
        db,
        bus,
        auth,
        registry,
        router,
        ca,
        reconciler,
        sampler,
        usage,
        access_log,
        metrics,
        services,
        pipelines,
        app,
        generated,
        responder,
        lifecycle=lifecycle,
        shared=shared,
        leadership=leadership,
    )
    return baepo


class Lifespan:
    """ASGI lifespan around the app: start the data plane and the loops, stop the loops.

    Every request's state has `stopping` (`request.state.stopping`), set when the server
    begins to stop: followed logs end then, so that the drain does not wait for them."""

    def __init__(self, baepo: Baepo) -> None:
        self.baepo = baepo
        self.stopping = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.baepo.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if "state" in scope:  # uvicorn copies it into each request's scope
                    scope["state"]["stopping"] = self.stopping
                try:
                    await self.baepo.startup()
                except StartupError as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.baepo.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


class _Server(uvicorn.Server):
    """uvicorn, but a SIGTERM or SIGINT ends `run()` normally (exit status 0) instead of
    re-raising the signal after the graceful shutdown; and the app hears of the shutdown
    before its drain (`Lifespan.stopping`)."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if isinstance(self.config.app, Lifespan):
            self.config.app.stopping.set()
        await super().shutdown(sockets)

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        def stop(signum: int, frame: FrameType | None) -> None:
            log.info("received %s: stopping", signal.Signals(signum).name)
            if not self.should_exit:
                threading.Thread(
                    target=_exit_when_overdue, name="baepo-shutdown", daemon=True
                ).start()
            self.handle_exit(signum, frame)

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _exit_when_overdue() -> None:
    """The last guarantee of SHUTDOWN_S, for whatever the budgets above did not foresee."""
    time.sleep(SHUTDOWN_S)
    log.error("shutdown still not done after %.0f s: exiting with work under way", SHUTDOWN_S)
    logging.shutdown()
    os._exit(0)


def run(config: Config) -> None:
    """Serve in the foreground until SIGINT or SIGTERM."""
    os.umask(0o077)  # whatever Baepo writes (state, keys, blobs, certificates) is its own
    memory.limit_arenas()  # before any thread starts (see baepo/memory.py)
    logging.basicConfig(
        level=config.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    check_ports(config)
    descriptors = raise_descriptor_limit()  # whatever the cap: the work needs them too
    limits = Limits(
        max_connections=config.max_connections or default_max_connections(descriptors),
        header_s=config.header_timeout_s,
        body_idle_s=config.body_timeout_s,
    )
    log.info(
        "at most %d connections; %.0f s for a request's headers",
        limits.max_connections,
        limits.header_s,
    )
    try:
        baepo = build(config)
    except (OSError, StoreError) as exc:
        raise StartupError(f"cannot use data directory {config.data_dir}: {exc}") from exc
    log.info("data directory %s", config.data_dir)
    log.info("state database %s", baepo.db.shown)
    if baepo.generated_password:
        # Shown once: the hash is all that is stored.
        print(f"admin password (shown once): {baepo.generated_password}", file=sys.stderr)
    log.info("registry and API on http://%s:%d (pid %d)", config.host, config.port, os.getpid())
    if config.registry_hostname:
        port = "" if config.https_port == 443 else f":{config.https_port}"
        log.info("registry and API over HTTPS at https://%s%s", config.registry_hostname, port)
    server = _Server(
        uvicorn.Config(
            Lifespan(baepo),
            host=config.host,
            port=config.port,
            log_level=config.log_level,
            # One format for every line (the root logger's), and no line per request below
            # debug: a CLI following an operation polls it several times a second.
            log_config=None,
            access_log=config.log_level == "debug",
            lifespan="on",
            server_header=False,
            http=bounded_protocol(limits),
            ws="none",  # nothing here speaks WebSocket; the library alone is 6.6 MB resident
            timeout_graceful_shutdown=DRAIN_S,
            # Through the router (https://registry.<domain>) a request's scheme and client
            # come in X-Forwarded-Proto/-For; trusted from the router's address only, so that
            # the registry's token realm and redirects say https.
            proxy_headers=True,
            forwarded_allow_ips=config.api_address.rpartition(":")[0],
        )
    )
    try:
        # Listening before the loops start: the reconciler's first pass can have the engine
        # pull from this registry (a push's deploy that a restart interrupted), and a
        # connection made while the lifespan starts waits in the backlog instead of being
        # refused. (uvicorn binds after the lifespan's startup.)
        listening = server.config.bind_socket()
        listening.listen(server.config.backlog)
        server.run(sockets=[listening])
    except SystemExit:  # uvicorn's way to say it could not start (its port was taken since)
        if server.started:
            raise
    finally:
        if not server.started:
            baepo.abandon()
        baepo.db.dispose()
        log.info("stopped")
    if not server.started:
        raise StartupError("could not start: see the log above")
    if baepo.leadership is not None and baepo.leadership.state == "lost":
        raise StartupError("stopped after losing the control lease: start again to follow")
