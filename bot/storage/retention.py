"""PROMPT_RETENTION_DAYS: turns older than the retention period go with their unused image files, and
older audit rows keep their cost with the prompt blanked."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage.blob_users import hashes_in
from bot.storage.blobs import BlobStore
from bot.storage.db import Database
from bot.storage.forget import BATCH, discard_unused, drop_turns
from bot.storage.tables import quota_reservations, turns, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Pruned:
    """What one retention round removed."""

    turns: int = 0
    images: int = 0
    prompts: int = 0


class PromptRetention:
    """Prunes turns and prompts older than the retention period (None: everything is kept)."""

    def __init__(self, db: Database, blobs: BlobStore, days: float | None) -> None:
        self.db = db
        self.blobs = blobs
        self.days = days

    async def prune(self, *, now: datetime | None = None) -> Pruned:
        """Delete old turns batch by batch (one transaction each), then their unused image files."""
        if self.days is None:
            return Pruned()
        started = now or utcnow()
        cutoff = started - timedelta(days=self.days)
        removed, hashes = 0, []
        while True:
            batch, found = await self.db.write(lambda conn: _prune_batch(conn, cutoff))
            removed += batch
            hashes += found
            if batch < BATCH:
                break
        prompts = await self.db.write(lambda conn: _blank_prompts(conn, cutoff))
        images = await discard_unused(self.db, self.blobs, hashes, min(started, utcnow()))
        if removed or prompts:
            log.info("retention: pruned %d turns, %d images, %d audit prompts", removed, images, prompts)
        return Pruned(turns=removed, images=images, prompts=prompts)


async def _prune_batch(conn: AsyncConnection, cutoff: datetime) -> tuple[int, list[str]]:
    """Delete up to one batch of turns created before cutoff; how many and their blob hashes."""
    query = (
        select(turns.c.id, turns.c.input_images, turns.c.output_images)
        .where(turns.c.created_at < cutoff)
        .order_by(turns.c.id)
        .limit(BATCH)
    )
    ids: list[int] = []
    hashes: list[str] = []
    for row in await conn.execute(query):
        ids.append(int(row.id))
        hashes += hashes_in(row.input_images) + hashes_in(row.output_images)
    await drop_turns(conn, ids)
    return len(ids), hashes


async def _blank_prompts(conn: AsyncConnection, cutoff: datetime) -> int:
    """Blank the prompts of audit rows created before cutoff (their costs stay for the totals)."""
    t = quota_reservations
    query = update(t).where(and_(t.c.created_at < cutoff, t.c.prompt != "")).values(prompt="")
    return int((await conn.execute(query)).rowcount or 0)
