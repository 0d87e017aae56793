"""The personal layer: each member's defaults (/prefs) and saved styles (/style).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the types at this revision: later edits to tables.py must not change history.
STAMP = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create member_prefs and styles."""
    op.create_table(
        "member_prefs",
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("updated_at", STAMP, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_member_prefs"),
    )
    op.create_table(
        "styles",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("guild_id", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("prompt", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("images", sa.JSON(), server_default=sa.text("'[]'"), nullable=False),
        sa.Column("share_code", sa.String(16), nullable=False),
        sa.Column("origin_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", STAMP, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_styles"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_styles_owner_id_name", "styles", ["owner_id", "guild_id", "name"], unique=True)
    op.create_index("ix_styles_guild_id", "styles", ["guild_id"])
    op.create_index("ix_styles_share_code", "styles", ["share_code"], unique=True)
    op.create_index("ix_styles_origin_id", "styles", ["origin_id"])


def downgrade() -> None:
    """Drop styles and member_prefs."""
    op.drop_index("ix_styles_origin_id", table_name="styles")
    op.drop_index("ix_styles_share_code", table_name="styles")
    op.drop_index("ix_styles_guild_id", table_name="styles")
    op.drop_index("ix_styles_owner_id_name", table_name="styles")
    op.drop_table("styles")
    op.drop_table("member_prefs")
