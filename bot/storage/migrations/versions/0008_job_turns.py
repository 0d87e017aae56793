"""The audit log names each delivered job's result: quota_reservations.turn_id.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add turn_id (the result a committed job delivered; none for older rows) to quota_reservations."""
    op.add_column("quota_reservations", sa.Column("turn_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    """Drop turn_id."""
    with op.batch_alter_table("quota_reservations") as batch:
        batch.drop_column("turn_id")
