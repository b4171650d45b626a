"""auth: failed sign-in buckets shared by the processes on one database

Revision ID: 5c2e8f1a7d3b
Revises: 4b1d0c2e9a7f
Create Date: 2026-12-03 16:15:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import baepo.store.types

revision: str = "5c2e8f1a7d3b"
down_revision: str | None = "4b1d0c2e9a7f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "auth_sign_in_buckets",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("level", sa.Float(), nullable=False),
        sa.Column("at", baepo.store.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("auth_sign_in_buckets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_auth_sign_in_buckets_at"), ["at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("auth_sign_in_buckets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auth_sign_in_buckets_at"))
    op.drop_table("auth_sign_in_buckets")
