"""registry: lifecycle policies per repository (ECR's)

Revision ID: 32476d1dc33b
Revises: 1007e5c1b473
Create Date: 2026-12-03 02:10:37.222543
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import baepo.store.types

revision: str = "32476d1dc33b"
down_revision: str | None = "1007e5c1b473"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("registry_repositories", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lifecycle_policy", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "lifecycle_evaluated_at",
                baepo.store.types.UtcDateTime(timezone=True),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("registry_repositories", schema=None) as batch_op:
        batch_op.drop_column("lifecycle_evaluated_at")
        batch_op.drop_column("lifecycle_policy")
