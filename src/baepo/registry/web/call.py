"""`Call`: one request to the registry's HTTP edge, routed, and what authorizes it.

The app (app.py) makes a `Call` for each request and hands it to a handler (blobs.py,
listing.py, manifests.py, uploads.py); handlers import this module, never the app. `run`
authorizes the request once, in the worker-thread trip of the handler's first lookup; auth
errors become OCI `UNAUTHORIZED`/`DENIED` answers with a challenge here, once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import anyio.to_thread
from starlette.requests import Request

from baepo.auth.access import Access, Principal
from baepo.auth.errors import (
    AccessDenied,
    AuthenticationRequired,
    AuthUnavailable,
    TooManyAttempts,
)
from baepo.auth.gate import RegistryGate
from baepo.registry.errors import (
    Denied,
    RegistryError,
    RegistryUnavailable,
    TooManyRequests,
    Unauthorized,
)
from baepo.registry.service import Registry

T = TypeVar("T")

BASE = Access("registry", "base", frozenset())


@dataclass
class Call:
    """One request, routed; `run` authorizes it (once) before any work is done."""

    request: Request
    registry: Registry
    gate: RegistryGate
    name: str = ""
    arg: str = ""
    wanted: Access = BASE
    also: tuple[Access, ...] = ()  # more scopes a challenge names (a mount's source)
    principal: Principal = field(default_factory=lambda: Principal(""))
    authorized: bool = False

    @property
    def head(self) -> bool:
        return self.request.method == "HEAD"

    @property
    def base_url(self) -> str:
        url = self.request.url
        return f"{url.scheme}://{url.netloc}"

    async def run(self, work: Callable[[], T]) -> T:
        """Authorize the request (the first time), then do `work`, in one worker-thread trip:
        a refused caller never sees what the work would have found."""

        def authorized_work() -> T:
            if not self.authorized:
                repo = self.name if self.wanted.type == "repository" else None
                self.principal = self._check(self.wanted, repo)
                self.authorized = True
            return work()

        try:
            return await anyio.to_thread.run_sync(authorized_work)
        except (AuthenticationRequired, AccessDenied) as exc:
            raise self._refusal(exc, self.wanted) from exc
        except AuthUnavailable as exc:
            raise RegistryUnavailable(str(exc)) from exc

    async def check(self, wanted: Access, repo: str) -> Principal:
        """Another scope the request needs (a mount's source repository)."""
        try:
            return await anyio.to_thread.run_sync(self._check, wanted, repo)
        except (AuthenticationRequired, AccessDenied) as exc:
            raise self._refusal(exc, wanted) from exc
        except AuthUnavailable as exc:
            raise RegistryUnavailable(str(exc)) from exc

    def _check(self, wanted: Access, repo: str | None) -> Principal:
        header = self.request.headers.get("authorization")
        address = self.request.client.host if self.request.client else None
        try:
            return self.gate.authorize(header, wanted, public=False, address=address)
        except TooManyAttempts:
            raise
        except (AuthenticationRequired, AccessDenied):
            # Only a refused pull needs the repository's public flag: most callers never
            # pay for the lookup.
            if repo and wanted.actions <= {"pull"} and self.registry.is_public(repo):
                return self.gate.authorize(header, wanted, public=True, address=address)
            raise

    def _refusal(self, exc: AuthenticationRequired | AccessDenied, wanted: Access) -> RegistryError:
        if isinstance(exc, TooManyAttempts):
            return TooManyRequests(str(exc), headers={"Retry-After": str(exc.retry_after)})
        if isinstance(exc, AuthenticationRequired):
            challenge = self.gate.challenge(
                self.base_url, None if wanted is BASE else wanted, *self._more(wanted)
            )
            return Unauthorized(
                str(exc) or None, _scope_detail(wanted), headers={"WWW-Authenticate": challenge}
            )
        challenge = self.gate.challenge(self.base_url, wanted, *self._more(wanted))
        if "error=" not in challenge:
            challenge += ',error="insufficient_scope"'
        return Denied(
            str(exc) or None, _scope_detail(wanted), headers={"WWW-Authenticate": challenge}
        )

    def _more(self, wanted: Access) -> tuple[Access, ...]:
        return self.also if wanted == self.wanted else ()


def _scope_detail(wanted: Access) -> list[dict[str, str]]:
    return [{"Type": wanted.type, "Name": wanted.name, "Action": a} for a in sorted(wanted.actions)]
