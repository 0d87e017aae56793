"""Cooldowns: when each member last had a job admitted (checked atomically with the reservation).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A frozen copy of the type at this revision: later edits to tables.py must not change history.
STAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create cooldowns."""
    op.create_table(
        "cooldowns",
        sa.Column("guild_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("last_at", STAMP, nullable=False),
        sa.PrimaryKeyConstraint("guild_id", "user_id", name="pk_cooldowns"),
    )


def downgrade() -> None:
    """Drop cooldowns."""
    op.drop_table("cooldowns")
