"""access keys of API tokens (SigV4), secrets sealed

Revision ID: 1e10da9196d5
Revises: 29ceaca59c9c
Create Date: 2026-12-03 01:43:39.139696
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import baepo.store.types

revision: str = "1e10da9196d5"
down_revision: str | None = "29ceaca59c9c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "auth_access_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column("sealed_secret", sa.Text(), nullable=False),
        sa.Column("created_at", baepo.store.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", baepo.store.types.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["token_id"], ["auth_api_tokens.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_id"),
    )
    with op.batch_alter_table("auth_access_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_auth_access_keys_token_id"), ["token_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("auth_access_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auth_access_keys_token_id"))

    op.drop_table("auth_access_keys")
