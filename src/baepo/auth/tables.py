"""The auth room's tables: users and their API tokens."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

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
