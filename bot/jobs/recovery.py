"""Restart safety: a heartbeat per process, and the jobs of dead processes refunded and reported."""

from __future__ import annotations

import hashlib
import logging
import secrets
import socket
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import ColumnElement, and_, delete, func, or_, select

from bot.billing.store import LIKE_ESCAPE, QuotaStore, escape_like
from bot.storage.db import Database, insert_for
from bot.storage.tables import instances, quota_reservations, utcnow

log = logging.getLogger(__name__)

INTERRUPTED = "refunded: interrupted by a restart"
SHUT_DOWN = "refunded: interrupted by a shutdown"
LOST = "refunded: never settled (database error)"
#: Characters of the host name kept in an instance key (the owner column holds 40 in all).
HOST_CHARS = 20


def instance_key(shard_ids: Sequence[int] | None, host: str | None = None) -> str:
    """What stays the same when this deployment restarts: the host and the shards it runs.

    Two live processes never share it (they would answer the same interactions twice), so a
    reservation held under this key by another boot belongs to a predecessor that is gone.
    """
    shards = "all" if shard_ids is None else ",".join(str(s) for s in sorted(shard_ids))
    digest = hashlib.blake2s(shards.encode(), digest_size=3).hexdigest()
    return f"{_short_host(host or socket.gethostname())}.{digest}"


def _short_host(host: str) -> str:
    """The host name in at most HOST_CHARS characters, still unique: a long one (Kubernetes pods share
    long prefixes and differ at the end) keeps its start and gains a hash of the whole name."""
    if len(host) <= HOST_CHARS:
        return host
    digest = hashlib.blake2s(host.encode(), digest_size=4).hexdigest()
    return f"{host[: HOST_CHARS - len(digest) - 1]}~{digest}"


def new_owner(shard_ids: Sequence[int] | None = None, host: str | None = None) -> str:
    """A name for this process: its instance key and a token unique to this boot (≤ 40 chars)."""
    return f"{instance_key(shard_ids, host)}:{secrets.token_hex(4)}"


def _key_of(owner: str) -> str:
    """The instance key part of an owner name."""
    return owner.rpartition(":")[0]


@dataclass(frozen=True, slots=True)
class Orphan:
    """A job whose process died: refunded, and its user to be told."""

    reservation_id: int
    guild_id: int
    channel_id: int | None
    user_id: int
    kind: str
    stage: str | None = None


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

    async def live_processes(self) -> int:
        """How many processes beat recently (this one included): they share the providers' rates."""
        cutoff = utcnow() - timedelta(seconds=self.stale_after)
        query = select(func.count()).select_from(instances).where(instances.c.seen_at >= cutoff)
        async with self.db.connect() as conn:
            return max(1, int((await conn.execute(query)).scalar_one()))

    async def retire(self) -> None:
        """A clean exit: forget this process, so that nothing it still held waits for staleness."""
        gone = delete(instances).where(instances.c.owner == self.owner)
        await self.db.write(lambda conn: conn.execute(gone))

    async def orphans(self) -> list[Orphan]:
        """Jobs held by another process that is gone: a predecessor of this instance (same host and
        shards, another boot), a process whose heartbeat is stale or that retired, or no owner at all."""
        t, alive = quota_reservations, instances
        cutoff = utcnow() - timedelta(seconds=self.stale_after)
        living = select(alive.c.owner).where(alive.c.seen_at >= cutoff)
        predecessor = t.c.owner.like(f"{escape_like(_key_of(self.owner))}:%", escape=LIKE_ESCAPE)
        dead_owner = or_(t.c.owner.is_(None), t.c.owner.not_in(living), predecessor)
        return await self._select(
            and_(t.c.status == "reserved", t.c.owner.is_distinct_from(self.owner), dead_owner)
        )

    async def held(self, *, older_than: timedelta | None = None) -> list[Orphan]:
        """The jobs this process itself still holds (only those reserved before older_than ago)."""
        t = quota_reservations
        mine = and_(t.c.status == "reserved", t.c.owner == self.owner)
        if older_than is not None:
            mine = and_(mine, t.c.created_at < utcnow() - older_than)
        return await self._select(mine)

    async def sweep(self, in_flight: Collection[int], *, older_than: timedelta) -> list[Orphan]:
        """Refund this process's reservations that no job holds any more (a refund or commit that
        failed while the database was down); nothing stays reserved while the process lives."""
        lost = [job for job in await self.held(older_than=older_than) if job.reservation_id not in in_flight]
        return await self._refund(lost, LOST)

    async def _select(self, where: ColumnElement[bool]) -> list[Orphan]:
        """The reservations matching `where`, oldest first, as Orphans."""
        t = quota_reservations
        query = select(t.c.id, t.c.guild_id, t.c.channel_id, t.c.user_id, t.c.kind, t.c.stage)
        query = query.where(where).order_by(t.c.id)
        async with self.db.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [Orphan(r.id, r.guild_id, r.channel_id, r.user_id, r.kind, r.stage) for r in rows]

    async def recover(self) -> list[Orphan]:
        """Refund every orphaned job; return those this call refunded (another process may race us)."""
        return await self._refund(await self.orphans(), INTERRUPTED)

    async def release(self) -> list[Orphan]:
        """At shutdown: refund the jobs this process could not finish; return them."""
        return await self._refund(await self.held(), SHUT_DOWN)

    async def _refund(self, jobs: list[Orphan], outcome: str) -> list[Orphan]:
        """Refund each job still reserved; those this call refunded (another process may race us)."""
        refunded = [job for job in jobs if await self.quotas.refund(job.reservation_id, outcome=outcome)]
        if refunded:
            log.warning("refunded %d jobs (%s)", len(refunded), outcome.removeprefix("refunded: "))
        return refunded
