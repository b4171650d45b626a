"""service owners and tokens limited to services

Services made before owners existed belong to `admin` (admins only see and operate them);
existing API tokens keep no limit to services.

Revision ID: f66c036f8f72
Revises: 052fdd6b99c2
Create Date: 2026-12-02 02:11:40.662145
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f66c036f8f72"
down_revision: str | None = "052fdd6b99c2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("auth_api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("services", sa.Text(), server_default="", nullable=False))

    with op.batch_alter_table("control_services", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("owner", sa.String(length=64), server_default="admin", nullable=False)
        )
        batch_op.create_index(batch_op.f("ix_control_services_owner"), ["owner"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("control_services", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_control_services_owner"))
        batch_op.drop_column("owner")

    with op.batch_alter_table("auth_api_tokens", schema=None) as batch_op:
        batch_op.drop_column("services")
