"""Users, API tokens and their access keys, registry bearer tokens (the Docker token spec),
with scopes."""

from baepo.auth.access import CATALOG, Access, Principal, parse_scope, repository
from baepo.auth.access_keys import AccessKey, AccessKeys, Sealer, SigningKey
from baepo.auth.bearer import load_or_create_key
from baepo.auth.endpoints import token_routes
from baepo.auth.errors import (
    AccessDenied,
    AuthenticationRequired,
    AuthError,
    AuthUnavailable,
    InvalidName,
    NotFound,
    TooManyAttempts,
    UserExists,
)
from baepo.auth.gate import RegistryGate
from baepo.auth.service import ADMIN, ApiToken, Auth, User

__all__ = [
    "ADMIN",
    "CATALOG",
    "Access",
    "AccessDenied",
    "AccessKey",
    "AccessKeys",
    "ApiToken",
    "Auth",
    "AuthError",
    "AuthUnavailable",
    "AuthenticationRequired",
    "InvalidName",
    "NotFound",
    "Principal",
    "RegistryGate",
    "Sealer",
    "SigningKey",
    "TooManyAttempts",
    "User",
    "UserExists",
    "load_or_create_key",
    "parse_scope",
    "repository",
    "token_routes",
]
