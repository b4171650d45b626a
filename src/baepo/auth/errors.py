"""Errors of the auth room.

AuthError
├── AuthenticationRequired   no credentials, or credentials that are wrong or expired (401)
│   └── TooManyAttempts      too many failed sign-ins from this address or for this account,
│                            or too many at once (429 with Retry-After)
├── AccessDenied             valid credentials without the needed scope (401 with a challenge
│                            naming the scope, as the Docker token spec expects)
├── AuthUnavailable          the state database cannot be used (full disk, I/O error): 503
├── UserExists               a user or token name is taken
├── InvalidName              a user name or a token's limit is not well formed
└── NotFound                 no such user or token
"""

from __future__ import annotations

from baepo.auth.access import Access


class AuthError(Exception):
    pass


class AuthenticationRequired(AuthError):
    def __init__(self, message: str, wanted: Access | None = None) -> None:
        super().__init__(message)
        self.wanted = wanted


class TooManyAttempts(AuthenticationRequired):
    """Refused before checking: a subclass, so an edge that knows no better still says 401."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AccessDenied(AuthError):
    def __init__(self, message: str, wanted: Access | None = None) -> None:
        super().__init__(message)
        self.wanted = wanted


class AuthUnavailable(AuthError):
    pass


class UserExists(AuthError):
    pass


class NotFound(AuthError):
    pass


class InvalidName(AuthError, ValueError):
    """Bad input, not a failure: also a `ValueError`, what it was before it had a type."""
