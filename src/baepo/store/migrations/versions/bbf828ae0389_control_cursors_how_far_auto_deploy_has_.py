"""control cursors: how far auto-deploy has followed the push log

Pushes made before this revision were decided when they happened (from the in-process event):
the push cursor starts at the newest one.

Revision ID: bbf828ae0389
Revises: f66c036f8f72
Create Date: 2026-12-02 02:27:00.715429
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "bbf828ae0389"
down_revision: str | None = "f66c036f8f72"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "control_cursors",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.execute(
        "INSERT INTO control_cursors (name, position) "
        "SELECT 'push', COALESCE(MAX(id), 0) FROM registry_push_events"
    )


def downgrade() -> None:
    op.drop_table("control_cursors")
