"""What the registry asks of the auth room: may this caller do this?"""

from __future__ import annotations

from typing import Protocol

from baepo.auth.access import Access, Principal


class RegistryGate(Protocol):
    def authorize(
        self,
        authorization: str | None,
        wanted: Access,
        *,
        public: bool = False,
        address: str | None = None,
    ) -> Principal:
        """Check an `Authorization` header (Basic or Bearer, or None) from the client at
        `address` against `wanted`.

        `public` says the repository allows anonymous pull. Returns the caller, or raises
        `AuthenticationRequired` (no or bad credentials; `TooManyAttempts` after too many) or
        `AccessDenied` (not allowed).
        """
        ...

    def may_pull(self, principal: Principal, repository: str, *, public: bool) -> bool:
        """Whether `principal` (already authorized, e.g. for the catalog) may pull
        `repository`: what the catalog lists to it."""
        ...

    def challenge(self, base_url: str, wanted: Access | None, *more: Access) -> str:
        """The `WWW-Authenticate` value for a 401: `Bearer realm=...,service=...,scope=...`
        (`more` scopes are listed too, space-separated)."""
        ...
