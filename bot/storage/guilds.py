"""Per-server settings (/settings): defaults, channels, blocklist, cooldown, concurrency, safety, search,
previews."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy import select

from bot.storage.db import Database, insert_for
from bot.storage.tables import guild_settings, utcnow


class GuildConfig(BaseModel):
    """What a server's admins chose; every field has a default so old rows keep loading."""

    model_config = {"extra": "ignore"}

    default_provider: str | None = None
    default_model: str | None = None
    allowed_channels: list[int] = Field(default_factory=list)
    blocklist: list[str] = Field(default_factory=list)
    age_restricted_only: bool = False
    cooldown_seconds: int = Field(default=0, ge=0, le=86_400)
    max_concurrent: int | None = Field(default=None, ge=1, le=50)
    cost_multiplier: float = Field(default=1.0, ge=0, le=100)
    #: How strictly the provider filters harmful content; "relaxed" applies only in age-restricted
    #: channels (elsewhere the provider's defaults do).
    safety: Literal["strict", "default", "relaxed"] = "default"
    #: Ground images in Google Search unless a job says otherwise (only on models that can).
    search_default: bool = False
    #: Show thinking models' interim images while they work (when LIVE_PREVIEW lets the bot).
    previews: bool = True


class GuildSettingsStore:
    """Reads and writes GuildConfig rows (one JSON document per server)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, guild_id: int | None) -> GuildConfig:
        """The server's settings, or the defaults."""
        if not guild_id:
            return GuildConfig()
        async with self.db.connect() as conn:
            row = (
                await conn.execute(select(guild_settings.c.data).where(guild_settings.c.guild_id == guild_id))
            ).first()
        return GuildConfig.model_validate(row[0]) if row else GuildConfig()

    async def put(self, guild_id: int, config: GuildConfig) -> None:
        """Replace the server's settings."""
        data = config.model_dump(mode="json")
        insert = insert_for(self.db.dialect, guild_settings).values(
            guild_id=guild_id, data=data, updated_at=utcnow()
        )
        upsert = insert.on_conflict_do_update(
            index_elements=[guild_settings.c.guild_id], set_={"data": data, "updated_at": utcnow()}
        )
        await self.db.write(lambda conn: conn.execute(upsert))
