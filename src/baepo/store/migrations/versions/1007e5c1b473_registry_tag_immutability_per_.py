"""registry: tag immutability per repository (ECR's), with exceptions

Revision ID: 1007e5c1b473
Revises: 1e10da9196d5
Create Date: 2026-12-03 02:03:30.633115
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "1007e5c1b473"
down_revision: str | None = "1e10da9196d5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("registry_repositories", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("immutable_tags", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("tag_exceptions", sa.Text(), server_default="", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("registry_repositories", schema=None) as batch_op:
        batch_op.drop_column("tag_exceptions")
        batch_op.drop_column("immutable_tags")
