"""Restart safety: which process holds each reservation, and a heartbeat per process.

Revision ID: 0004
Revises: 0003
Create Date: 2025-01-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add channel_id and owner to quota_reservations; create instances."""
    op.add_column("quota_reservations", sa.Column("channel_id", sa.BigInteger(), nullable=True))
    op.add_column("quota_reservations", sa.Column("owner", sa.String(40), nullable=True))
    op.create_table(
        "instances",
        sa.Column("owner", sa.String(40), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("owner", name="pk_instances"),
    )


def downgrade() -> None:
    """Drop instances and the two columns."""
    op.drop_table("instances")
    with op.batch_alter_table("quota_reservations") as batch:
        batch.drop_column("owner")
        batch.drop_column("channel_id")
