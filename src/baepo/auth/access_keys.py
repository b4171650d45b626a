"""AWS-style access keys: what the aws CLI, boto3 and Terraform sign requests with (SigV4).

An API token gets keys (an id `BKIA…` and a 40-character secret); a request signed with one
acts with the token's rights, as the token would (its user, its repository and service limits),
and stops working the moment the token is deleted. The secret is shown once, at creation; it is
stored sealed by a `Sealer` (the installation's secret box), because verifying a signature means
computing it again with the secret itself.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from baepo.auth.errors import AuthUnavailable, NotFound
from baepo.auth.rights import Caller
from baepo.auth.tables import AccessKeyRow, ApiTokenRow, UserRow, token_caller
from baepo.clock import Clock
from baepo.store import Database, affected

KEY_PREFIX = "BKIA"
"""Baepo's access key ids read like AWS's (`AKIA…`, 20 characters) but never are one."""
_KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
USED_EVERY = timedelta(minutes=1)
"""How stale `last_used_at` may get: a signed call writes it at most this often."""


class Sealer(Protocol):
    """Encrypts secrets at rest (the control room's `SecretBox` is one)."""

    def seal(self, plaintext: str) -> str: ...

    def open(self, token: str) -> str: ...


@dataclass(frozen=True)
class AccessKey:
    key_id: str
    user: str
    token: str
    """The name of the API token whose rights the key carries."""
    created_at: datetime
    last_used_at: datetime | None
    secret: str | None = None
    """Only when just created."""


@dataclass(frozen=True)
class SigningKey:
    """What a signature is checked with, and who a request signed with it acts as."""

    key_id: str
    secret: str
    caller: Caller


def new_key_id() -> str:
    return KEY_PREFIX + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16))


class AccessKeys:
    def __init__(self, db: Database, sealer: Sealer, clock: Clock) -> None:
        self._db = db
        self._sealer = sealer
        self._clock = clock

    @contextmanager
    def _session(self) -> Iterator[Session]:
        try:
            with self._db.session() as s:
                yield s
        except SQLAlchemyError as exc:
            reason = getattr(exc, "orig", None) or exc
            raise AuthUnavailable(f"the state database cannot be used: {reason}") from exc

    def create(self, user: str, token: str) -> AccessKey:
        """A new key for the user's token named `token`; NotFound if there is none."""
        secret = secrets.token_urlsafe(30)  # 40 characters, as AWS's secrets are
        sealed = self._sealer.seal(secret)
        now = self._clock.now()
        with self._session() as s, s.begin():
            token_id = s.scalar(
                sa.select(ApiTokenRow.id)
                .join(UserRow)
                .where(UserRow.name == user, ApiTokenRow.name == token)
            )
            if token_id is None:
                raise NotFound(f"user {user!r} has no token named {token!r}")
            key_id = new_key_id()
            s.add(
                AccessKeyRow(
                    key_id=key_id,
                    token_id=token_id,
                    sealed_secret=sealed,
                    created_at=now,
                    last_used_at=None,
                )
            )
        return AccessKey(key_id, user, token, now, None, secret)

    def keys(self, user: str, token: str | None = None) -> list[AccessKey]:
        """The user's keys (of one token's when `token` is given), oldest first."""
        query = (
            sa.select(AccessKeyRow, ApiTokenRow.name)
            .join(ApiTokenRow)
            .join(UserRow)
            .where(UserRow.name == user)
            .order_by(AccessKeyRow.id)
        )
        if token is not None:
            query = query.where(ApiTokenRow.name == token)
        with self._session() as s:
            return [
                AccessKey(key.key_id, user, name, key.created_at, key.last_used_at)
                for key, name in s.execute(query)
            ]

    def delete(self, user: str, key_id: str, token: str | None = None) -> None:
        """Revoke one of the user's keys (one of `token`'s when given); NotFound otherwise."""
        owned = sa.select(ApiTokenRow.id).join(UserRow).where(UserRow.name == user)
        if token is not None:
            owned = owned.where(ApiTokenRow.name == token)
        with self._session() as s, s.begin():
            gone = s.execute(
                sa.delete(AccessKeyRow).where(
                    AccessKeyRow.key_id == key_id, AccessKeyRow.token_id.in_(owned)
                )
            )
            if not affected(gone):
                raise NotFound(f"no access key {key_id!r}")

    def token_name(self, user: str, token_id: int) -> str:
        """The name of the user's token with this id (the one a caller signed in with)."""
        with self._session() as s:
            name = s.scalar(
                sa.select(ApiTokenRow.name)
                .join(UserRow)
                .where(UserRow.name == user, ApiTokenRow.id == token_id)
            )
        if name is None:
            raise NotFound(f"user {user!r} has no such token")
        return name

    def signing_key(self, key_id: str) -> SigningKey | None:
        """The key's secret and who signs with it, or None if there is no such key (never
        made, revoked, or its token deleted)."""
        now = self._clock.now()
        with self._session() as s, s.begin():
            found = s.execute(
                sa.select(AccessKeyRow, ApiTokenRow, UserRow)
                .join(ApiTokenRow, AccessKeyRow.token_id == ApiTokenRow.id)
                .join(UserRow, ApiTokenRow.user_id == UserRow.id)
                .where(AccessKeyRow.key_id == key_id)
            ).first()
            if found is None:
                return None
            key, token, user = found
            if key.last_used_at is None or now - key.last_used_at >= USED_EVERY:
                key.last_used_at = now
            sealed, caller = key.sealed_secret, token_caller(token, user)
        return SigningKey(key_id, self._sealer.open(sealed), caller)


def key_caller(s: Session, key_id: str) -> Caller | None:
    """Who acts with the access key now (None if it is gone), without opening its secret."""
    found = s.execute(
        sa.select(ApiTokenRow, UserRow)
        .join(UserRow, ApiTokenRow.user_id == UserRow.id)
        .join(AccessKeyRow, AccessKeyRow.token_id == ApiTokenRow.id)
        .where(AccessKeyRow.key_id == key_id)
    ).first()
    return None if found is None else token_caller(*found)
