"""The auth room's tables: users, their API tokens, and the tokens' access keys."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from baepo.auth.rights import Caller
from baepo.store import Base, UtcDateTime


class UserRow(Base):
    __tablename__ = "auth_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(256))
    is_admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ApiTokenRow(Base):
    """An API token: a long random secret a robot uses as a password.

    Only a hash is stored. `repositories` limits the token to those repository names
    (space-separated; a trailing `*` matches a prefix); `services` to those services' reads
    and deployments (space-separated names); both empty means all of its user's rights.
    """

    __tablename__ = "auth_api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("auth_users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(128))
    prefix: Mapped[str] = mapped_column(sa.String(16), index=True)
    secret_hash: Mapped[str] = mapped_column(sa.String(128))
    repositories: Mapped[str] = mapped_column(sa.Text, default="")
    services: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (sa.UniqueConstraint("user_id", "name"),)


def token_caller(token: ApiTokenRow, user: UserRow) -> Caller:
    """Who signs in with this token: its user, within the token's limits."""
    return Caller(
        user.name,
        user.is_admin,
        tuple(token.repositories.split()),
        tuple(token.services.split()),
        token.id,
    )


class AccessKeyRow(Base):
    """An AWS-style access key of an API token: an id and a secret that sign requests (SigV4)
    with the token's rights. Deleting the token deletes its keys (the foreign key cascades).

    SigV4 proves a request with an HMAC keyed by the secret itself, so verifying one needs the
    secret, not a hash of it: it is stored sealed (encrypted with the installation's secrets
    key, as services' secrets are), never in plain text.
    """

    __tablename__ = "auth_access_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    key_id: Mapped[str] = mapped_column(sa.String(32), unique=True)
    token_id: Mapped[int] = mapped_column(
        sa.ForeignKey("auth_api_tokens.id", ondelete="CASCADE"), index=True
    )
    sealed_secret: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class SignInBucketRow(Base):
    """A failed sign-in bucket (`auth/throttle.py`'s `SharedThrottle`): the failures counted
    against one key (a client address, an account name) by every process sharing the
    database, as a level that leaks at the throttle's rate from `at` on."""

    __tablename__ = "auth_sign_in_buckets"

    key: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    level: Mapped[float] = mapped_column(sa.Float)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
