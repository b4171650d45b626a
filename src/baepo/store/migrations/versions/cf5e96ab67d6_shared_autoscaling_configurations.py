"""shared autoscaling configurations (App Runner's AutoScalingConfiguration), one row per revision

Revision ID: cf5e96ab67d6
Revises: bbf828ae0389
Create Date: 2026-12-02 14:49:29.892216
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import baepo.store.types

revision: str = "cf5e96ab67d6"
down_revision: str | None = "bbf828ae0389"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "control_autoscaling_configurations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("min_size", sa.Integer(), nullable=False),
        sa.Column("max_size", sa.Integer(), nullable=False),
        sa.Column("max_concurrency", sa.Integer(), nullable=False),
        sa.Column("created_at", baepo.store.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", baepo.store.types.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", "revision"),
    )
    with op.batch_alter_table("control_autoscaling_configurations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_control_autoscaling_configurations_name"), ["name"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_control_autoscaling_configurations_owner"), ["owner"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("control_autoscaling_configurations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_control_autoscaling_configurations_owner"))
        batch_op.drop_index(batch_op.f("ix_control_autoscaling_configurations_name"))

    op.drop_table("control_autoscaling_configurations")
