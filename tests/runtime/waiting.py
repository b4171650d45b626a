"""Polling with a deadline: tests wait for conditions, never for a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import httpx
import pytest

T = TypeVar("T")


def eventually(probe: Callable[[], T | None], timeout_s: float = 20, what: str = "") -> T:
    """Call `probe` until it returns something other than None; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = probe()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout_s} s: {what or probe}")
        time.sleep(0.02)


def http_get(url: str) -> httpx.Response | None:
    """The response, or None while nothing answers there (yet)."""
    try:
        return httpx.get(url, timeout=2)
    except httpx.TransportError:
        return None


def answering(url: str, timeout_s: float = 20) -> httpx.Response:
    """The first 2xx response from `url`, polled until `timeout_s`."""

    def probe() -> httpx.Response | None:
        response = http_get(url)
        return response if response is not None and response.is_success else None

    return eventually(probe, timeout_s, f"GET {url} answers 2xx")
