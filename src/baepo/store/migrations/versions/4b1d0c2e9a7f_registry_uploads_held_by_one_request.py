"""registry: uploads held by one request at a time, and lifecycle previews, among processes
sharing the database

Revision ID: 4b1d0c2e9a7f
Revises: 78c80ad36d97
Create Date: 2026-12-03 13:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import baepo.store.types

revision: str = "4b1d0c2e9a7f"
down_revision: str | None = "78c80ad36d97"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("registry_uploads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("held_by", sa.String(length=255), nullable=True))
        batch_op.add_column(
            sa.Column("held_until", baepo.store.types.UtcDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("registry_repositories", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lifecycle_preview", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("registry_repositories", schema=None) as batch_op:
        batch_op.drop_column("lifecycle_preview")
    with op.batch_alter_table("registry_uploads", schema=None) as batch_op:
        batch_op.drop_column("held_until")
        batch_op.drop_column("held_by")
