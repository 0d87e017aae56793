"""Restart safety: a heartbeat per process, and the jobs of dead processes refunded and reported."""

from __future__ import annotations

import logging
import os
import secrets
import socket
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, or_, select

from bot.quota_store import QuotaStore
from bot.storage.db import Database, insert_for
from bot.storage.tables import instances, quota_reservations, utcnow

log = logging.getLogger(__name__)

INTERRUPTED = "refunded: interrupted by a restart"


def new_owner() -> str:
    """A name for this process, unique across machines and restarts."""
    return f"{socket.gethostname()[:20]}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass(frozen=True, slots=True)
class Orphan:
    """A job whose process died: refunded, and its user to be told."""

    reservation_id: int
    guild_id: int
    channel_id: int | None
    user_id: int
    kind: str


class Recovery:
    """Keeps this process's heartbeat fresh and settles jobs left by processes that stopped beating."""

    def __init__(self, db: Database, quotas: QuotaStore, owner: str, *, stale_after: float) -> None:
        self.db = db
        self.quotas = quotas
        self.owner = owner
        self.stale_after = stale_after

    async def heartbeat(self) -> None:
        """Record that this process is alive."""
        now = utcnow()
        insert = insert_for(self.db.dialect, instances).values(owner=self.owner, seen_at=now)
        upsert = insert.on_conflict_do_update(index_elements=[instances.c.owner], set_={"seen_at": now})
        await self.db.write(lambda conn: conn.execute(upsert))

    async def orphans(self) -> list[Orphan]:
        """Jobs still held by another process whose heartbeat is stale (or that never had an owner)."""
        t, alive = quota_reservations, instances
        cutoff = utcnow() - timedelta(seconds=self.stale_after)
        living = select(alive.c.owner).where(alive.c.seen_at >= cutoff)
        dead_owner = or_(t.c.owner.is_(None), t.c.owner.not_in(living))
        query = (
            select(t.c.id, t.c.guild_id, t.c.channel_id, t.c.user_id, t.c.kind)
            .where(and_(t.c.status == "reserved", t.c.owner.is_distinct_from(self.owner), dead_owner))
            .order_by(t.c.id)
        )
        async with self.db.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [Orphan(r.id, r.guild_id, r.channel_id, r.user_id, r.kind) for r in rows]

    async def recover(self) -> list[Orphan]:
        """Refund every orphaned job; return those this call refunded (another process may race us)."""
        refunded = []
        for orphan in await self.orphans():
            if await self.quotas.refund(orphan.reservation_id, outcome=INTERRUPTED):
                refunded.append(orphan)
        if refunded:
            log.warning("refunded %d jobs interrupted by a restart", len(refunded))
        return refunded
