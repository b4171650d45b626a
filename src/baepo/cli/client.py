"""The CLI's HTTP client: where Baepo is, who we are, and one clear line when it fails.

Settings come from the environment first (`BAEPO_URL`, `BAEPO_TOKEN`), then from what
`baepo login` kept (`baepo.cli.settings`: the server signed in to last, a token per server).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from baepo.cli.settings import load_settings, server_key

DEFAULT_URL = "http://127.0.0.1:5000"


class CliError(Exception):
    """A failure to show as one line; the command exits non-zero. `code` is the API's
    stable error code when the API answered with one."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Client:
    url: str
    token: str | None
    timeout: float = 60.0

    @classmethod
    def from_environment(cls, url: str | None = None) -> Client:
        """The server `url`, else `BAEPO_URL`'s, else the one signed in to last; with
        `BAEPO_TOKEN`, else the token kept for that server (none kept: no token)."""
        saved = load_settings()
        where = server_key(url or os.environ.get("BAEPO_URL") or saved.url or DEFAULT_URL)
        login = saved.login_to(where)
        return cls(
            url=where, token=os.environ.get("BAEPO_TOKEN") or (login.token if login else None)
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
