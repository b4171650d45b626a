"""What `baepo login` keeps: an API token per server, in `$BAEPO_CONFIG` (default
`~/.config/baepo/cli.json`, mode 0600):

    {
      "url": "http://127.0.0.1:5000",          the server signed in to last: the default one
      "servers": {
        "http://127.0.0.1:5000": {"token": "bp_…", "username": "admin"}
      }
    }

A token is sent only to the server it came from: `BAEPO_URL` naming another server finds no
token for it. A file of the single-login form (`url`, `token` and `username` at the top) reads
as that server's login, and is written in the form above at the next login or logout.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Login:
    token: str
    username: str


@dataclass
class Settings:
    url: str | None = None
    logins: dict[str, Login] = field(default_factory=dict)

    def login_to(self, url: str) -> Login | None:
        return self.logins.get(server_key(url))


def server_key(url: str) -> str:
    """A server's URL as logins are kept under it (`http://host:5000/` is `http://host:5000`)."""
    return url.rstrip("/")


def config_path() -> Path:
    env = os.environ.get("BAEPO_CONFIG")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "baepo/cli.json"


def load_settings() -> Settings:
    """The file's settings; none when it is missing or unreadable (`baepo login` rewrites it)."""
    try:
        data = json.loads(config_path().read_text())
    except (OSError, ValueError):
        return Settings()
    if not isinstance(data, dict):
        return Settings()
    url = data.get("url")
    settings = Settings(url=server_key(url) if isinstance(url, str) and url else None)
    servers = data.get("servers")
    if isinstance(servers, dict):
        for where, kept in servers.items():
            login = _login(kept)
            if login is not None:
                settings.logins[server_key(str(where))] = login
    elif settings.url and (single := _login(data)) is not None:  # the single-login form
        settings.logins[settings.url] = single
    return settings


def save_settings(settings: Settings) -> Path:
    """Write the settings readable by their owner only, replacing the file at once."""
    document: dict[str, Any] = {"url": settings.url} if settings.url else {}
    document["servers"] = {
        url: {"token": login.token, "username": login.username}
        for url, login in settings.logins.items()
    }
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(document, f, indent=2)
    os.replace(tmp, path)
    return path


def _login(kept: object) -> Login | None:
    if not isinstance(kept, dict) or not isinstance(kept.get("token"), str) or not kept["token"]:
        return None
    return Login(token=kept["token"], username=str(kept.get("username") or ""))
