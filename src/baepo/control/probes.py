"""Health probes: is an instance answering on its port the way its health check says?

The reconciler asks a `Prober`; tests give it a fake. `NetworkProber` is the real one: for an
HTTP check a `GET` of the path that must answer 2xx within the timeout (redirects are not
followed, as App Runner does not), for a TCP check a connection accepted within the timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Protocol

import httpx

from baepo.control.spec import HealthCheck
from baepo.control.spec import Protocol as CheckProtocol


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str
    """Why, for the operation log: "HTTP 200", "connection refused", "timed out after 2 s"."""


class Prober(Protocol):
    async def probe(self, address: str, check: HealthCheck) -> ProbeResult:
        """Check the instance at `address` (`127.0.0.1:<port>`); never raises."""
        ...


class NetworkProber:
    def __init__(self) -> None:
        self._client = httpx.AsyncClient(follow_redirects=False, trust_env=False)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def probe(self, address: str, check: HealthCheck) -> ProbeResult:
        if check.protocol is CheckProtocol.HTTP:
            return await self._http(address, check)
        return await self._tcp(address, check)

    async def _http(self, address: str, check: HealthCheck) -> ProbeResult:
        url = f"http://{address}{check.path}"
        try:
            response = await self._client.get(
                url, timeout=check.timeout_s, headers={"User-Agent": "baepo-health-check"}
            )
        except httpx.TimeoutException:
            return ProbeResult(False, f"GET {check.path} timed out after {check.timeout_s} s")
        except httpx.HTTPError as exc:
            return ProbeResult(False, f"GET {check.path} failed: {_reason(exc)}")
        ok = 200 <= response.status_code < 300
        return ProbeResult(ok, f"GET {check.path} answered HTTP {response.status_code}")

    async def _tcp(self, address: str, check: HealthCheck) -> ProbeResult:
        host, _, port = address.rpartition(":")
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(host, int(port)), timeout=check.timeout_s
            )
        except TimeoutError:
            return ProbeResult(False, f"TCP connect timed out after {check.timeout_s} s")
        except (OSError, ValueError) as exc:
            return ProbeResult(False, f"TCP connect failed: {_reason(exc)}")
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return ProbeResult(True, "TCP connect accepted")


def _reason(exc: BaseException) -> str:
    while exc.__cause__ is not None and not str(exc):
        exc = exc.__cause__
    return str(exc) or type(exc).__name__
