"""Quotas: quota_rules, quota_counters, quota_reservations.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the types at this revision: later edits to tables.py must not change history.
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
STAMP = sa.DateTime(timezone=True)
ZERO = sa.text("0")


def _stamp(name: str, *, nullable: bool = False) -> sa.Column[object]:
    """A timestamp; NOT NULL ones default to now."""
    if nullable:
        return sa.Column(name, STAMP, nullable=True)
    return sa.Column(name, STAMP, nullable=False, server_default=sa.func.now())


def _create_rules() -> None:
    """Rules: the guild pool, the default per-user limit, and role and user overrides."""
    op.create_table(
        "quota_rules",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("guild_id", sa.BigInteger(), nullable=False),
        sa.Column("scope", sa.String(8), nullable=False),
        sa.Column("target_id", sa.BigInteger(), nullable=False),
        sa.Column("limit_cents", sa.BigInteger(), nullable=True),
        sa.Column("blocked", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("window", sa.String(8), nullable=False),
        _stamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_quota_rules"),
        sa.UniqueConstraint("guild_id", "scope", "target_id", name="uq_quota_rules_guild_id_scope_target_id"),
    )


def _create_counters() -> None:
    """Counters: used and reserved cents per (guild, subject, window start)."""
    op.create_table(
        "quota_counters",
        sa.Column("guild_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("window_start", STAMP, nullable=False),
        sa.Column("used_cents", sa.BigInteger(), nullable=False, server_default=ZERO),
        sa.Column("reserved_cents", sa.BigInteger(), nullable=False, server_default=ZERO),
        sa.PrimaryKeyConstraint("guild_id", "subject", "window_start", name="pk_quota_counters"),
    )


def _create_reservations() -> None:
    """Reservations: one per charged job, also the audit log."""
    op.create_table(
        "quota_reservations",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("guild_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("cost_cents", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False, server_default=sa.text("''")),
        sa.Column("provider", sa.String(64), nullable=True),
        sa.Column("model", sa.String(128), nullable=True),
        sa.Column("outcome", sa.String(200), nullable=True),
        sa.Column("counters", sa.JSON(), nullable=False, server_default=sa.text("'[]'")),
        _stamp("created_at"),
        _stamp("finished_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_quota_reservations"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_quota_reservations_guild_id_id", "quota_reservations", ["guild_id", "id"])
    op.create_index(
        "ix_quota_reservations_guild_id_user_id_id", "quota_reservations", ["guild_id", "user_id", "id"]
    )
    op.create_index("ix_quota_reservations_status_created_at", "quota_reservations", ["status", "created_at"])


def upgrade() -> None:
    """Create the three quota tables and their indexes."""
    _create_rules()
    _create_counters()
    _create_reservations()


def downgrade() -> None:
    """Drop everything revision 0002 created."""
    op.drop_table("quota_reservations")
    op.drop_table("quota_counters")
    op.drop_table("quota_rules")
