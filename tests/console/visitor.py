"""A person at the console, over HTTP: a cookie jar, the last page, its forms' CSRF token."""

from __future__ import annotations

import re
from html import unescape

import httpx
from fastapi.testclient import TestClient
from starlette.types import ASGIApp

CSRF = re.compile(r'name="csrf" value="([^"]*)"')


class Visitor:
    def __init__(
        self, app: ASGIApp, base_url: str = "http://127.0.0.1", address: str = "testclient"
    ) -> None:
        self.client = TestClient(
            app, base_url=base_url, follow_redirects=False, client=(address, 50000)
        )
        self.page: httpx.Response | None = None

    def get(self, path: str) -> httpx.Response:
        self.page = self.client.get(path)
        return self.page

    def open(self, path: str) -> httpx.Response:
        """GET, following redirects (as a browser does)."""
        self.page = self.client.get(path, follow_redirects=True)
        return self.page

    @property
    def csrf(self) -> str:
        """The CSRF token of the last page's forms."""
        assert self.page is not None
        found = CSRF.search(self.page.text)
        assert found, f"no form on {self.page.url}"
        return found.group(1)

    def submit(self, path: str, **fields: str) -> httpx.Response:
        """POST a form as the last page's forms do (with its CSRF token)."""
        response: httpx.Response = self.client.post(path, data={"csrf": self.csrf, **fields})
        if response.status_code != 303:
            self.page = response
        return response

    def sign_in(self, user: str, password: str, next: str = "/") -> httpx.Response:
        self.get("/sign-in")
        return self.submit("/sign-in", username=user, password=password, next=next)


def text(response: httpx.Response) -> str:
    """A page's text without its markup, as a person reads it (entities decoded)."""
    without = re.sub(r"<[^>]+>", " ", response.text)
    return re.sub(r"\s+", " ", unescape(without))
