"""The schema as SQLAlchemy Core tables; every change here needs an Alembic migration too."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.types import DateTime, TypeDecorator

#: BIGINT on PostgreSQL, INTEGER on SQLite so that the column is the rowid and autoincrements.
BigId = BigInteger().with_variant(Integer, "sqlite")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert to UTC; SQLite gets the naive UTC wall time."""
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Attach UTC to naive values (they were stored as UTC)."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _created() -> Column[datetime]:
    """A NOT NULL creation timestamp."""
    return Column("created_at", UTCDateTime(), nullable=False, default=utcnow, server_default=func.now())


turns = Table(
    "turns",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("guild_id", BigInteger, nullable=True),
    Column("channel_id", BigInteger, nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("parent_id", BigId, ForeignKey("turns.id", ondelete="SET NULL"), nullable=True),
    Column("root_id", BigId, nullable=True),
    Column("kind", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("prompt", Text, nullable=False, default="", server_default=text("''")),
    Column("provider", String(64), nullable=True),
    Column("model", String(128), nullable=True),
    Column("options", JSON, nullable=False, default=dict, server_default=text("'{}'")),
    Column("input_images", JSON, nullable=False, default=list, server_default=text("'[]'")),
    Column("output_images", JSON, nullable=False, default=list, server_default=text("'[]'")),
    Column("model_text", Text, nullable=True),
    Column("provider_state", JSON, nullable=False, default=dict, server_default=text("'{}'")),
    Column("error", Text, nullable=True),
    _created(),
    Column(
        "updated_at",
        UTCDateTime(),
        nullable=False,
        default=utcnow,
        onupdate=utcnow,
        server_default=func.now(),
    ),
    sqlite_autoincrement=True,
)
Index("ix_turns_channel_id_id", turns.c.channel_id, turns.c.id)
Index("ix_turns_root_id", turns.c.root_id)
Index("ix_turns_parent_id", turns.c.parent_id)
Index("ix_turns_user_id_id", turns.c.user_id, turns.c.id)

turn_messages = Table(
    "turn_messages",
    metadata,
    Column("message_id", BigInteger, primary_key=True, autoincrement=False),
    Column("turn_id", BigId, ForeignKey("turns.id", ondelete="CASCADE"), nullable=False),
    Column("channel_id", BigInteger, nullable=False),
)
Index("ix_turn_messages_turn_id", turn_messages.c.turn_id)

blobs = Table(
    "blobs",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("mime", String(32), nullable=False),
    Column("size", Integer, nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    _created(),
    Column("last_used_at", UTCDateTime(), nullable=False, default=utcnow, server_default=func.now()),
)
Index("ix_blobs_last_used_at", blobs.c.last_used_at)


#: Quota rules: per guild, the server pool ("guild"), the default per-user limit, per role, per user.
quota_rules = Table(
    "quota_rules",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("guild_id", BigInteger, nullable=False),
    Column("scope", String(8), nullable=False),
    Column("target_id", BigInteger, nullable=False),
    Column("limit_cents", BigInteger, nullable=True),
    Column("blocked", Boolean, nullable=False, default=False, server_default=false()),
    Column("window", String(8), nullable=False),
    Column(
        "updated_at",
        UTCDateTime(),
        nullable=False,
        default=utcnow,
        onupdate=utcnow,
        server_default=func.now(),
    ),
    UniqueConstraint("guild_id", "scope", "target_id"),
)

#: Quota counters: used and reserved cents of one subject in one window (epoch = not windowed).
quota_counters = Table(
    "quota_counters",
    metadata,
    Column("guild_id", BigInteger, primary_key=True, autoincrement=False),
    Column("subject", String(64), primary_key=True),
    Column("window_start", UTCDateTime(), primary_key=True),
    Column("used_cents", BigInteger, nullable=False, default=0, server_default=text("0")),
    Column("reserved_cents", BigInteger, nullable=False, default=0, server_default=text("0")),
)

#: Quota reservations: one row per charged job, and the audit log of who spent what.
quota_reservations = Table(
    "quota_reservations",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("guild_id", BigInteger, nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("cost_cents", BigInteger, nullable=False),
    Column("status", String(12), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("prompt", Text, nullable=False, default="", server_default=text("''")),
    Column("provider", String(64), nullable=True),
    Column("model", String(128), nullable=True),
    Column("outcome", String(200), nullable=True),
    Column("counters", JSON, nullable=False, default=list, server_default=text("'[]'")),
    _created(),
    Column("finished_at", UTCDateTime(), nullable=True),
    Column("channel_id", BigInteger, nullable=True),
    Column("owner", String(40), nullable=True),
    #: While reserved: "queued" (waiting for a slot) or "running" (the provider was called).
    Column("stage", String(10), nullable=True),
    #: The result a committed job delivered (its job id is this turn's); none for a job without one.
    Column("turn_id", BigInteger, nullable=True),
    sqlite_autoincrement=True,
)
Index("ix_quota_reservations_guild_id_id", quota_reservations.c.guild_id, quota_reservations.c.id)
Index(
    "ix_quota_reservations_guild_id_user_id_id",
    quota_reservations.c.guild_id,
    quota_reservations.c.user_id,
    quota_reservations.c.id,
)
Index(
    "ix_quota_reservations_status_created_at",
    quota_reservations.c.status,
    quota_reservations.c.created_at,
)


#: When each member last had a job admitted, per server (guild 0: DMs); the cooldown is checked and
#: moved forward in the same transaction as the job's reservation, so concurrent commands race here.
cooldowns = Table(
    "cooldowns",
    metadata,
    Column("guild_id", BigInteger, primary_key=True, autoincrement=False),
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("last_at", UTCDateTime(), nullable=False),
)


guild_settings = Table(
    "guild_settings",
    metadata,
    Column("guild_id", BigInteger, primary_key=True, autoincrement=False),
    Column("data", JSON, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False, default=utcnow, server_default=func.now()),
)


#: One row per running bot process, refreshed while it lives (restart recovery reads it).
instances = Table(
    "instances",
    metadata,
    Column("owner", String(40), primary_key=True),
    Column("seen_at", UTCDateTime(), nullable=False, default=utcnow, server_default=func.now()),
)


#: Each member's defaults for their jobs (/prefs): one JSON document per member, across servers.
member_prefs = Table(
    "member_prefs",
    metadata,
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("data", JSON, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False, default=utcnow, server_default=func.now()),
)


#: Saved styles: a member's own (guild_id 0) or a server's (published by its admins); style words
#: added to the prompt and reference images (blob hashes); a share code another member can import.
styles = Table(
    "styles",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("owner_id", BigInteger, nullable=False),
    Column("guild_id", BigInteger, nullable=False, default=0, server_default=text("0")),
    Column("name", String(64), nullable=False),
    Column("prompt", Text, nullable=False, default="", server_default=text("''")),
    Column("images", JSON, nullable=False, default=list, server_default=text("'[]'")),
    Column("share_code", String(16), nullable=False),
    #: Whose words and images the style holds when they are not its owner's (saved from another
    #: member's result, or imported): /forget of that member removes it too.
    Column("origin_id", BigInteger, nullable=True),
    _created(),
    sqlite_autoincrement=True,
)
Index("ix_styles_owner_id_name", styles.c.owner_id, styles.c.guild_id, styles.c.name, unique=True)
Index("ix_styles_guild_id", styles.c.guild_id)
Index("ix_styles_share_code", styles.c.share_code, unique=True)
Index("ix_styles_origin_id", styles.c.origin_id)
