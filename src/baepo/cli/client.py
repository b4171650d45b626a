"""The CLI's HTTP client: where Baepo is, who we are, and one clear line when it fails.

Settings come from the environment first (`BAEPO_URL`, `BAEPO_TOKEN`), then from the file
`baepo login` writes (`$BAEPO_CONFIG`, default `~/.config/baepo/cli.json`, mode 0600).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:5000"


class CliError(Exception):
    """A failure to show as one line; the command exits non-zero. `code` is the API's
    stable error code when the API answered with one."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


def config_path() -> Path:
    env = os.environ.get("BAEPO_CONFIG")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "baepo/cli.json"


def load_settings() -> dict[str, str]:
    try:
        data = json.loads(config_path().read_text())
    except (OSError, ValueError):
        return {}
    return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def save_settings(settings: dict[str, str]) -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(settings, f, indent=2)
    os.replace(tmp, path)
    return path


@dataclass
class Client:
    url: str
    token: str | None
    timeout: float = 60.0

    @classmethod
    def from_environment(cls, url: str | None = None) -> Client:
        saved = load_settings()
        return cls(
            url=(url or os.environ.get("BAEPO_URL") or saved.get("url") or DEFAULT_URL).rstrip("/"),
            token=os.environ.get("BAEPO_TOKEN") or saved.get("token"),
        )

    def request_text(self, method: str, path: str) -> str:
        return self._send(method, path).text

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise CliError(f"unexpected answer from {self.url}{path}") from exc

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = kwargs.pop("headers", {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            response = httpx.request(
                method, self.url + path, headers=headers, timeout=self.timeout, **kwargs
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise CliError(f"cannot reach Baepo at {self.url}: {exc}") from exc
        if response.status_code >= 400:
            raise CliError(_error_line(response), _error_code(response))
        return response

    def lines(
        self, path: str, params: Mapping[str, str], headers: Mapping[str, str]
    ) -> Iterator[str]:
        """GET `path` and its answer's lines as they arrive (a stream of events); a quiet
        answer is waited on for `timeout` seconds between lines."""
        sent = dict(headers)
        if self.token:
            sent["Authorization"] = f"Bearer {self.token}"
        try:
            with httpx.stream(
                "GET", self.url + path, params=params, headers=sent, timeout=self.timeout
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise CliError(_error_line(response), _error_code(response))
                yield from response.iter_lines()
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise CliError(f"lost Baepo at {self.url}: {exc}") from exc

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)


def _error_code(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return ""
    return str(error.get("code") or "") if isinstance(error, dict) else ""


def _error_line(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return f"{error['message']} ({error.get('code', response.status_code)})"
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return f"{errors[0].get('message')} ({errors[0].get('code')})"
    return f"HTTP {response.status_code} from {response.request.url.path}"
