"""The auth room's service: users, API tokens, and the registry gate.

`Auth` implements `RegistryGate` for the registry and backs the token endpoint
(`auth/endpoints.py`) and the API's user and token routes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from baepo.auth import bearer, key_passwords, passwords
from baepo.auth.access import PULL, Access, Principal
from baepo.auth.access_keys import key_caller
from baepo.auth.errors import (
    AccessDenied,
    AuthenticationRequired,
    AuthUnavailable,
    InvalidName,
    NotFound,
    TooManyAttempts,
    UserExists,
)
from baepo.auth.rights import Caller, allowed
from baepo.auth.tables import ApiTokenRow, UserRow, token_caller
from baepo.auth.throttle import Hashing, SharedThrottle, SignInThrottle, Throttle, retry_after
from baepo.clock import Clock
from baepo.store import Database, affected

ADMIN = "admin"
PULL_ONLY = frozenset({PULL})
# Robots may sign in with this user name and an API token as the password.
TOKEN_USER = "token"
LAST_USED_STEP = timedelta(minutes=1)
"""How stale a token's `last_used_at` may be: it is written at most this often."""


@dataclass(frozen=True)
class User:
    name: str
    is_admin: bool
    created_at: datetime


@dataclass(frozen=True)
class ApiToken:
    id: int
    name: str
    user: str
    repositories: tuple[str, ...]
    created_at: datetime
    last_used_at: datetime | None
    secret: str | None = None  # only when just created
    services: tuple[str, ...] = ()


class Auth:
    def __init__(
        self,
        db: Database,
        key: bytes,
        clock: Clock,
        *,
        service: str = "baepo",
        token_ttl: timedelta = timedelta(minutes=5),
        throttle: SignInThrottle | None = None,
        hashing: Hashing | None = None,
    ) -> None:
        self._db = db
        self._key = key
        self._clock = clock
        self.service = service
        self._ttl = token_ttl
        # scrypt costs ~50 ms by design; remember the passwords that matched a stored hash so
        # Basic-auth clients (which send the password on every request) don't pay it each
        # time. Keyed by the stored hash, read from the database at every sign-in: a user
        # deleted or a password changed by any process sharing the database counts at once.
        self._matched: set[tuple[str, str, str]] = set()
        self._matched_lock = threading.Lock()
        self._dummy_hash: str | None = None
        self._dummy_lock = threading.Lock()
        if throttle is None:  # processes sharing a database count failures together
            throttle = Throttle(clock) if db.is_sqlite else SharedThrottle(db, clock)
        self._throttle = throttle
        self._hashing = hashing or Hashing(os.cpu_count() or 2)

    @contextmanager
    def _session(self) -> Iterator[Session]:
        """A database session; its failures (a full disk, an I/O error) become
        `AuthUnavailable`, except a clash (`IntegrityError`), which callers name."""
        try:
            with self._db.session() as s:
                yield s
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            reason = getattr(exc, "orig", None) or exc  # the driver's words: "disk is full"
            raise AuthUnavailable(f"the state database cannot be used: {reason}") from exc

    # -- users ---------------------------------------------------------------------------

    def ensure_admin(self, password: str | None) -> str | None:
        """Create the first admin if there is no user yet; set its password when given.

        Returns a generated password that must be shown once, or None.
        """
        with self._session() as s, s.begin():
            row = s.scalar(sa.select(UserRow).where(UserRow.name == ADMIN))
            if row is not None:
                if password and not passwords.verify_password(password, row.password_hash):
                    row.password_hash = passwords.hash_password(password)
                return None
            if s.scalar(sa.select(sa.func.count()).select_from(UserRow)):
                return None
            generated = None if password else passwords.random_password()
            s.add(
                UserRow(
                    name=ADMIN,
                    password_hash=passwords.hash_password(password or generated or ""),
                    is_admin=True,
                    created_at=self._clock.now(),
                )
            )
            return generated

    def create_user(self, name: str, password: str, *, is_admin: bool = False) -> User:
        if (
            not name
            or name == TOKEN_USER
            or not name.replace("-", "").isalnum()
            or name != name.lower()
        ):
            raise InvalidName(f"invalid user name {name!r}: use lower-case letters, digits and '-'")
        row = UserRow(
            name=name,
            password_hash=passwords.hash_password(password),
            is_admin=is_admin,
            created_at=self._clock.now(),
        )
        try:
            with self._session() as s, s.begin():
                s.add(row)
        except IntegrityError as exc:
            raise UserExists(f"user {name!r} already exists") from exc
        return User(name, is_admin, row.created_at)

    def users(self) -> list[User]:
        with self._session() as s:
            rows = s.scalars(sa.select(UserRow).order_by(UserRow.name))
            return [User(r.name, r.is_admin, r.created_at) for r in rows]

    def delete_user(self, name: str) -> None:
        with self._session() as s, s.begin():
            row = s.scalar(sa.select(UserRow).where(UserRow.name == name))
            if row is None:
                raise NotFound(f"no user {name!r}")
            s.execute(sa.delete(ApiTokenRow).where(ApiTokenRow.user_id == row.id))
            s.delete(row)

    # -- API tokens ----------------------------------------------------------------------

    def create_token(
        self,
        user: str,
        name: str,
        repositories: tuple[str, ...] = (),
        services: tuple[str, ...] = (),
    ) -> ApiToken:
        """A new token; `repositories` and `services` limit it (see `rights.py`)."""
        for limit in (*repositories, *services):
            if not limit or any(c.isspace() for c in limit):
                raise InvalidName(f"invalid token limit {limit!r}: a name without spaces")
        secret, prefix = passwords.new_token_secret()
        now = self._clock.now()
        try:
            with self._session() as s, s.begin():
                owner = s.scalar(sa.select(UserRow).where(UserRow.name == user))
                if owner is None:
                    raise NotFound(f"no user {user!r}")
                row = ApiTokenRow(
                    user_id=owner.id,
                    name=name,
                    prefix=prefix,
                    secret_hash=passwords.hash_token(secret),
                    repositories=" ".join(repositories),
                    services=" ".join(services),
                    created_at=now,
                    last_used_at=None,
                )
                s.add(row)
                s.flush()
                token_id = row.id
        except IntegrityError as exc:
            raise UserExists(f"user {user!r} already has a token named {name!r}") from exc
        return ApiToken(token_id, name, user, repositories, now, None, secret, services)

    def tokens(self, user: str | None = None) -> list[ApiToken]:
        q = sa.select(ApiTokenRow, UserRow.name).join(UserRow).order_by(ApiTokenRow.id)
        if user is not None:
            q = q.where(UserRow.name == user)
        with self._session() as s:
            return [
                ApiToken(
                    t.id,
                    t.name,
                    u,
                    tuple(t.repositories.split()),
                    t.created_at,
                    t.last_used_at,
                    services=tuple(t.services.split()),
                )
                for t, u in s.execute(q)
            ]

    def delete_token(self, user: str, name: str) -> None:
        with self._session() as s, s.begin():
            owner = s.scalar(sa.select(UserRow).where(UserRow.name == user))
            deleted = 0
            if owner is not None:
                deleted = affected(
                    s.execute(
                        sa.delete(ApiTokenRow).where(
                            ApiTokenRow.user_id == owner.id, ApiTokenRow.name == name
                        )
                    )
                )
            if not deleted:
                raise NotFound(f"user {user!r} has no token named {name!r}")

    def revoke_token(self, secret: str) -> None:
        """Delete the API token whose secret this is (a client signing out); `NotFound` if
        no token has it."""
        prefix = passwords.token_prefix(secret)
        digest = passwords.hash_token(secret)
        with self._session() as s, s.begin():
            deleted = affected(
                s.execute(
                    sa.delete(ApiTokenRow).where(
                        ApiTokenRow.prefix == prefix, ApiTokenRow.secret_hash == digest
                    )
                )
            )
        if not deleted:
            raise NotFound("no such API token")

    # -- authentication ------------------------------------------------------------------

    def authenticate(self, username: str, secret: str, *, address: str | None = None) -> Caller:
        """A user by password or API token, from the client at `address` (when known).

        Raises AuthenticationRequired when wrong, TooManyAttempts when this address or account
        has failed too often lately, or too many password checks are running at once.
        """
        if username == key_passwords.KEY_USER:
            return self._check_key_password(secret)
        caller = self._check_token(username, secret)
        if caller is None:
            keys = [f"account:{username}"] + ([f"address:{address}"] if address else [])
            caller = self._check_password(username, secret, keys)
        return caller

    def key_password(self, key_id: str) -> tuple[str, datetime]:
        """A registry password for user `AWS` that signs in as the access key's token, and
        when it expires (ECR's `get-login-password`; see key_passwords.py)."""
        return key_passwords.issue(self._key, key_id, self._clock.now())

    def _check_key_password(self, password: str) -> Caller:
        """Checked at every use, never remembered: a revoked key's password stops at once."""
        key_id = key_passwords.access_key_of(self._key, password, self._clock.now())
        caller = None
        if key_id is not None:
            with self._session() as s:
                caller = key_caller(s, key_id)
        if caller is None:
            raise AuthenticationRequired(
                "invalid or expired registry password: get a new one with "
                "`aws ecr get-login-password`"
            )
        return caller

    def _check_password(self, username: str, password: str, keys: list[str]) -> Caller:
        with self._session() as s:
            row = s.scalar(sa.select(UserRow).where(UserRow.name == username))
            found = None if row is None else (Caller(row.name, row.is_admin), row.password_hash)
        if found is not None:
            matched = (username, hashlib.sha256(password.encode()).hexdigest(), found[1])
            with self._matched_lock:
                if matched in self._matched:
                    return found[0]
        wait = self._throttle.wait(keys)
        if wait > 0:
            seconds = retry_after(wait)
            raise TooManyAttempts(f"too many failed sign-ins: try again in {seconds} s", seconds)
        if not self._hashing.acquire():
            raise TooManyAttempts("too many sign-ins at once: try again shortly", 1)
        try:
            verified = self._verify_password(found, password)
        finally:
            self._hashing.release()
        if found is None or not verified:
            self._throttle.failed(keys)
            raise AuthenticationRequired("invalid username or password")
        with self._matched_lock:
            if len(self._matched) >= 1000:
                self._matched.clear()
            self._matched.add(matched)
        return found[0]

    def _verify_password(self, found: tuple[Caller, str] | None, password: str) -> bool:
        if found is None:
            # Pay for scrypt all the same: an answer that comes back sooner for an unknown
            # name would tell who has an account.
            passwords.verify_password(password, self._unknown_user_hash())
            return False
        return passwords.verify_password(password, found[1])

    def _unknown_user_hash(self) -> str:
        """A hash no password is checked against for real (made on first need, once)."""
        with self._dummy_lock:
            if self._dummy_hash is None:
                self._dummy_hash = passwords.hash_password(passwords.random_password())
            return self._dummy_hash

    def _check_token(self, username: str, secret: str) -> Caller | None:
        prefix = passwords.token_prefix(secret)
        if prefix is None:
            return None
        digest = passwords.hash_token(secret)
        now = self._clock.now()
        with self._session() as s, s.begin():  # at every use: a token deleted anywhere stops
            for token, user in s.execute(
                sa.select(ApiTokenRow, UserRow).join(UserRow).where(ApiTokenRow.prefix == prefix)
            ):
                if token.secret_hash == digest and username in (user.name, TOKEN_USER):
                    used = token.last_used_at
                    if used is None or now - used >= LAST_USED_STEP:  # not a write per request
                        token.last_used_at = now
                    return token_caller(token, user)
        return None

    def caller_from_header(
        self, authorization: str | None, *, address: str | None = None
    ) -> Caller | Principal | None:
        """Who an `Authorization` header names: a Caller (Basic), a Principal (Bearer), or
        None (no header), for a client at `address`. Raises AuthenticationRequired for bad
        credentials (TooManyAttempts after too many)."""
        if not authorization:
            return None
        scheme, _, value = authorization.partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            username, secret = decode_basic(value.strip())
            return self.authenticate(username, secret, address=address)
        if scheme == "bearer":
            value = value.strip()
            if passwords.token_prefix(value) is not None:  # an API token used as a bearer
                return self.authenticate(TOKEN_USER, value, address=address)
            principal = bearer.verify(self._key, self.service, value, self._clock.now())
            if principal is None:
                raise AuthenticationRequired("invalid or expired token")
            return principal
        raise AuthenticationRequired(f"unsupported authorization scheme {scheme!r}")

    # -- the registry gate ---------------------------------------------------------------

    def authorize(
        self,
        authorization: str | None,
        wanted: Access,
        *,
        public: bool = False,
        address: str | None = None,
    ) -> Principal:
        who = self.caller_from_header(authorization, address=address)
        if isinstance(who, Principal):
            if not wanted.actions or who.allows(wanted):
                return who
            if public and wanted.actions <= {"pull"}:
                return who
            raise AccessDenied("access to the resource is denied", wanted)
        caller = who or Caller("")
        if not wanted.actions:
            if who is None:
                raise AuthenticationRequired("authentication required", wanted)
            return Principal(caller.name, caller.is_admin)
        if allowed(caller, wanted, public) >= wanted.actions:
            return Principal(caller.name, caller.is_admin, (wanted,))
        if who is None:
            raise AuthenticationRequired("authentication required", wanted)
        raise AccessDenied("access to the resource is denied", wanted)

    def may_pull(self, principal: Principal, repository: str, *, public: bool) -> bool:
        # The catalog is not open to limited tokens, so the principal's own rights apply.
        caller = Caller(principal.subject, principal.is_admin)
        return PULL in allowed(caller, Access("repository", repository, PULL_ONLY), public)

    def challenge(self, base_url: str, wanted: Access | None, *more: Access) -> str:
        value = f'Bearer realm="{base_url.rstrip("/")}/auth/token",service="{self.service}"'
        scopes = [a.scope() for a in (wanted, *more) if a is not None and a.actions]
        if scopes:
            value += f',scope="{" ".join(scopes)}"'
        return value

    def issue_token(
        self,
        authorization: str | None,
        requested: list[Access],
        is_public: Callable[[str], bool],
        *,
        address: str | None = None,
    ) -> tuple[str, int, datetime]:
        """A bearer token granting what the caller may do of `requested` (the token endpoint).

        Returns (token, lifetime in seconds, issued at)."""
        who = self.caller_from_header(authorization, address=address)
        if isinstance(who, Principal):  # a bearer token cannot mint another
            raise AuthenticationRequired("use a password or an API token to get a token")
        caller = who or Caller("")
        granted: list[Access] = []
        for want in requested:
            public = want.type == "repository" and is_public(want.name)
            actions = allowed(caller, want, public)
            if actions:
                granted.append(Access(want.type, want.name, actions))
        now = self._clock.now()
        principal = Principal(caller.name, caller.is_admin)
        token = bearer.issue(self._key, self.service, principal, granted, now, self._ttl)
        return token, int(self._ttl.total_seconds()), now


def decode_basic(value: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise AuthenticationRequired("malformed Basic credentials") from exc
    username, sep, secret = decoded.partition(":")
    if not sep:
        raise AuthenticationRequired("malformed Basic credentials")
    return username, secret
