"""Initial schema: turns, turn_messages, blobs.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the types at this revision: later edits to tables.py must not change history.
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
STAMP = sa.DateTime(timezone=True)
EMPTY_OBJECT = sa.text("'{}'")
EMPTY_LIST = sa.text("'[]'")


def _stamp(name: str) -> sa.Column[object]:
    """A NOT NULL timestamp defaulting to now."""
    return sa.Column(name, STAMP, nullable=False, server_default=sa.func.now())


def _json(name: str, empty: sa.TextClause) -> sa.Column[object]:
    """A NOT NULL JSON column defaulting to an empty object or list."""
    return sa.Column(name, sa.JSON(), nullable=False, server_default=empty)


def upgrade() -> None:
    """Create the three tables and their indexes."""
    op.create_table(
        "turns",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("guild_id", sa.BigInteger(), nullable=True),
        sa.Column("channel_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("parent_id", BIG_ID, nullable=True),
        sa.Column("root_id", BIG_ID, nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False, server_default=sa.text("''")),
        sa.Column("provider", sa.String(64), nullable=True),
        sa.Column("model", sa.String(128), nullable=True),
        _json("options", EMPTY_OBJECT),
        _json("input_images", EMPTY_LIST),
        _json("output_images", EMPTY_LIST),
        sa.Column("model_text", sa.Text(), nullable=True),
        _json("provider_state", EMPTY_OBJECT),
        sa.Column("error", sa.Text(), nullable=True),
        _stamp("created_at"),
        _stamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_turns"),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["turns.id"], name="fk_turns_parent_id_turns", ondelete="SET NULL"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_turns_channel_id_id", "turns", ["channel_id", "id"])
    op.create_index("ix_turns_root_id", "turns", ["root_id"])
    op.create_index("ix_turns_parent_id", "turns", ["parent_id"])
    op.create_index("ix_turns_user_id_id", "turns", ["user_id", "id"])
    op.create_table(
        "turn_messages",
        sa.Column("message_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("turn_id", BIG_ID, nullable=False),
        sa.Column("channel_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("message_id", name="pk_turn_messages"),
        sa.ForeignKeyConstraint(
            ["turn_id"], ["turns.id"], name="fk_turn_messages_turn_id_turns", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_turn_messages_turn_id", "turn_messages", ["turn_id"])
    op.create_table(
        "blobs",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("mime", sa.String(32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        _stamp("created_at"),
        _stamp("last_used_at"),
        sa.PrimaryKeyConstraint("sha256", name="pk_blobs"),
    )
    op.create_index("ix_blobs_last_used_at", "blobs", ["last_used_at"])


def downgrade() -> None:
    """Drop everything revision 0001 created."""
    op.drop_table("blobs")
    op.drop_table("turn_messages")
    op.drop_table("turns")
