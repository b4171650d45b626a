"""Baepo's configuration: command-line flags with environment fallbacks, as plain data."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATA_DIR = Path("/var/lib/baepo")


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 5000
    data_dir: Path = DEFAULT_DATA_DIR
    domain: str = "localhost"
    http_port: int = 80
    https_port: int = 443
    admin_password: str | None = None
    log_level: str = "info"
    docker_host: str = "unix:///var/run/docker.sock"
    deploy_timeout_s: float = 300.0
    sample_image: str | None = None
    acme_directory: str | None = None
    acme_email: str | None = None
    acme_ca_bundle: Path | None = None
    acme_challenge_port: int = 8402
    registry_host: str = "registry"
    """The registry and API also answer at https://<registry_host>.<domain> through the router
    ("" turns that off)."""
    max_connections: int | None = None
    """Open connections to Baepo's own port beyond which a new one gets 503 (None: half the
    open-file limit, at most 16,384; see `baepo/connections.py`)."""
    header_timeout_s: float = 15.0
    """Seconds a client has to send a request's headers before it gets 408."""
    body_timeout_s: float = 60.0
    max_services_per_user: int = 50
    """Live services one user (or team) may own; admins are not bound."""
    max_instances_per_user: int = 100
    """Instances (the sum of min_instances) one owner's services may keep running."""
    upload_ttl_s: float = 86400.0
    """An upload session idle this long is removed, its bytes and its row."""
    """Seconds a client may pause while sending a request body before it is closed."""
    kept_log_lines: int = 10_000
    """Lines of its instances' output a service keeps after they are gone (at most)."""
    kept_log_bytes: int = 10 * 1024 * 1024
    """Bytes of it on disk (at most; whichever bound comes first)."""
    runtime_images: tuple[tuple[str, str], ...] = ()
    """apprunner.yaml runtimes (`python3`, `nodejs18`, …) → the base image a pipeline builds
    such an app on, over the defaults (`baepo.pipelines.apprunner`)."""
    pipeline_workers: int = 2
    """Pipeline runs that may execute at once (one per service at a time)."""
    webhook_private_sources: bool = False
    """Webhooks may fetch commits from this machine and private networks (a Gitea on the same
    host or LAN). Off by default: a service's source URL is a user's input and the fetch runs
    on Baepo's machine, so it could otherwise reach internal addresses (SSRF)."""
    git_max_push_bytes: int = 1 << 30
    """A request to a service's git remote (a pushed pack) larger than this is refused (413)."""
    git_timeout_s: float = 3600.0
    """One request to a git remote, start to end (a push's includes its pipeline run): past
    it, git is stopped and the request answers 504."""
    swarm_edge_image: str | None = None
    """Run services on the Docker Swarm whose manager `docker_host` is (docs/swarm.md), with
    this image (any with `sleep`) as the edge the router and probes reach tasks through; None:
    on the one engine."""
    swarm_node_engines: tuple[tuple[str, str], ...] = ()
    """Swarm node hostname → the address of that node's engine, where the usage of the
    instances on it is read (Swarm has none); the manager's node needs none (`docker_host`)."""
    registry_pull_host: str | None = None
    """`host[:port]` where the engine (every swarm node) pulls Baepo's own images from, when
    it cannot use the API's address (a loopback one); the port defaults to Baepo's."""
    registry_addresses: tuple[str, ...] = ()
    """Other `host[:port]`s images in Baepo's registry are named by: a load balancer's in front
    of several Baepo processes, so that each takes the images pushed through it as its own."""
    peer_address: str | None = None
    """`host:port` where the other processes on the same database reach this one's API (they
    pass the git remote and the pipelines on to the leader); None: `api_address`."""
    storage: str = "filesystem"
    """Where the registry keeps blobs: "filesystem" (below `blob_dir`) or "s3"."""
    s3_bucket: str | None = None
    s3_endpoint: str | None = None
    """An S3 server's URL (SeaweedFS, MinIO…); None: AWS's own for `s3_region`."""
    s3_region: str = "us-east-1"
    s3_prefix: str = ""
    s3_access_key: str | None = None
    """None: boto3 finds credentials itself (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws)."""
    s3_secret_key: str | None = None
    s3_redirect: bool = False
    """Blob GETs answer 307 to a presigned S3 URL: clients fetch the bytes from S3."""

    database: str | None = None
    """The state database's URL (`postgresql+psycopg://…`); None: `$BAEPO_DATABASE_URL`, else
    SQLite in the data directory."""

    @property
    def database_url(self) -> str:
        return (
            self.database
            or os.environ.get("BAEPO_DATABASE_URL")
            or f"sqlite:///{self.data_dir / 'baepo.db'}"
        )

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "registry"

    @property
    def secrets_dir(self) -> Path:
        return self.data_dir / "secrets"

    @property
    def logs_dir(self) -> Path:
        """What gone instances wrote (`baepo.control.logkeeper`)."""
        return self.data_dir / "logs"

    @property
    def git_dir(self) -> Path:
        """The services' git remotes: one bare repository each."""
        return self.data_dir / "git"

    @property
    def pipelines_dir(self) -> Path:
        """Pipeline runs' logs, sources and workspaces."""
        return self.data_dir / "pipelines"

    @property
    def router_dir(self) -> Path:
        return self.data_dir / "router"

    @property
    def router_run_dir(self) -> Path:
        """HAProxy's sockets and pidfile: a short path (unix socket paths are limited to
        ~100 bytes), the same for the same data directory."""
        key = hashlib.sha256(str(self.data_dir.resolve()).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"baepo-{key}"

    @property
    def registry_hostname(self) -> str | None:
        """Where the router serves the registry and API over HTTPS: `registry.<domain>`."""
        return f"{self.registry_host}.{self.domain}" if self.registry_host else None

    @property
    def api_address(self) -> str:
        """Where the router reaches the registry and API (a loopback address if they listen
        on every address)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "localhost", "::", "") else self.host
        return f"{host}:{self.port}"

    @property
    def advertised_address(self) -> str:
        """Where the other processes on the same database reach this one's API."""
        return self.peer_address or self.api_address

    @property
    def pull_address(self) -> str:
        """Where the engine pulls Baepo's own images from (`registry_pull_host`, else the API)."""
        if not self.registry_pull_host:
            return self.api_address
        host = self.registry_pull_host
        return host if ":" in host.rsplit("]", 1)[-1] else f"{host}:{self.port}"

    @property
    def registry_hosts(self) -> tuple[str, ...]:
        """The host names images in Baepo's own registry carry."""
        hosts = [f"127.0.0.1:{self.port}", f"localhost:{self.port}"]
        if self.host not in ("127.0.0.1", "0.0.0.0", "localhost", "::", ""):
            hosts.append(f"{self.host}:{self.port}")
        if self.registry_hostname:
            hosts.append(f"{self.registry_hostname}:{self.https_port}")
            if self.https_port == 443:
                hosts.append(self.registry_hostname)
        hosts.extend(self.registry_addresses)
        return tuple(hosts)
