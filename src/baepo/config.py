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

    @property
    def database_url(self) -> str:
        return os.environ.get("BAEPO_DATABASE_URL") or f"sqlite:///{self.data_dir / 'baepo.db'}"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "registry"

    @property
    def secrets_dir(self) -> Path:
        return self.data_dir / "secrets"

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
    def registry_hosts(self) -> tuple[str, ...]:
        """The host names images in Baepo's own registry carry."""
        hosts = [f"127.0.0.1:{self.port}", f"localhost:{self.port}"]
        if self.host not in ("127.0.0.1", "0.0.0.0", "localhost", "::", ""):
            hosts.append(f"{self.host}:{self.port}")
        return tuple(hosts)
