"""Baepo's configuration: command-line flags with environment fallbacks, as plain data."""

from __future__ import annotations

import os
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

    @property
    def database_url(self) -> str:
        return os.environ.get("BAEPO_DATABASE_URL") or f"sqlite:///{self.data_dir / 'baepo.db'}"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "registry"

    @property
    def secrets_dir(self) -> Path:
        return self.data_dir / "secrets"
