"""Restart safety: whether each held job was waiting in the queue or running.

Revision ID: 0005
Revises: 0004
Create Date: 2025-01-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add stage ('queued' or 'running') to quota_reservations."""
    op.add_column("quota_reservations", sa.Column("stage", sa.String(10), nullable=True))


def downgrade() -> None:
    """Drop stage."""
    with op.batch_alter_table("quota_reservations") as batch:
        batch.drop_column("stage")
