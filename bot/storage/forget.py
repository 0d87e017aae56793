"""Forgetting a member: their turns, image files, preferences and styles go; audit rows keep the cost."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage.blob_users import blobs_still_used, hashes_in
from bot.storage.blobs import BlobStore
from bot.storage.db import Database
from bot.storage.tables import member_prefs, quota_reservations, styles, turn_messages, turns, utcnow

log = logging.getLogger(__name__)

#: Who the audit rows of a forgotten member are attributed to.
ANONYMOUS = 0
#: Turns removed per statement (keeps IN lists well under both databases' parameter limits).
BATCH = 500


@dataclass(frozen=True, slots=True)
class Forgotten:
    """What forgetting a member removed (busy: nothing was removed, a job of theirs is still held)."""

    results: int = 0
    images: int = 0
    prefs: bool = False
    styles: int = 0
    audit_rows: int = 0
    busy: int = 0


async def drop_turns(conn: AsyncConnection, turn_ids: Sequence[int]) -> None:
    """Delete turns and their message links; other turns continued from them lose only the link."""
    for start in range(0, len(turn_ids), BATCH):
        ids = list(turn_ids[start : start + BATCH])
        # Explicit rather than left to the foreign keys: the same result whatever the database enforces.
        await conn.execute(update(turns).where(turns.c.parent_id.in_(ids)).values(parent_id=None))
        await conn.execute(delete(turn_messages).where(turn_messages.c.turn_id.in_(ids)))
        await conn.execute(delete(turns).where(turns.c.id.in_(ids)))


async def discard_unused(db: Database, store: BlobStore, sha256s: Sequence[str], started: datetime) -> int:
    """Remove the files of these blobs that nothing uses any more; how many went."""
    if not sha256s:
        return 0
    async with db.connect() as conn:
        used = await blobs_still_used(conn, sha256s)
    unused = [sha for sha in dict.fromkeys(sha256s) if sha not in used]
    return await store.discard(unused, unused_since=started)


class ForgetStore:
    """Deletes everything stored about one member, across every server."""

    def __init__(self, db: Database, blobs: BlobStore) -> None:
        self.db = db
        self.blobs = blobs

    async def held_jobs(self, user_id: int) -> int:
        """How many jobs of the member are queued or running (in any process)."""
        async with self.db.connect() as conn:
            return int((await conn.execute(_held(user_id))).scalar_one())

    async def forget(self, user_id: int) -> Forgotten:
        """Delete the member's turns, message links, prefs and styles and anonymise their audit rows,
        in one transaction; then remove the image files nothing else uses. Refused (busy) while a job
        of theirs is held: its result would be stored after the deletion."""
        started = utcnow()

        async def work(conn: AsyncConnection) -> tuple[Forgotten, list[str]]:
            busy = int((await conn.execute(_held(user_id))).scalar_one())
            if busy:
                return Forgotten(busy=busy), []
            return await _delete_member(conn, user_id)

        forgotten, hashes = await self.db.write(work)
        if forgotten.busy:
            return forgotten
        images = await discard_unused(self.db, self.blobs, hashes, started)
        log.info(
            "forgot a member: %d results, %d images, %d styles, %d audit rows anonymised",
            forgotten.results,
            images,
            forgotten.styles,
            forgotten.audit_rows,
        )
        return Forgotten(
            results=forgotten.results,
            images=images,
            prefs=forgotten.prefs,
            styles=forgotten.styles,
            audit_rows=forgotten.audit_rows,
        )


def _held(user_id: int) -> Any:
    """Count the member's reservations that a job still holds."""
    t = quota_reservations
    return select(func.count()).select_from(t).where(and_(t.c.user_id == user_id, t.c.status == "reserved"))


async def _delete_member(conn: AsyncConnection, user_id: int) -> tuple[Forgotten, list[str]]:
    """The deletions of forget(), on one transaction; what went and the blob hashes to check."""
    hashes: list[str] = []
    own = select(turns.c.id, turns.c.input_images, turns.c.output_images).where(turns.c.user_id == user_id)
    turn_ids: list[int] = []
    for row in await conn.execute(own):
        turn_ids.append(int(row.id))
        hashes += hashes_in(row.input_images) + hashes_in(row.output_images)
    theirs = or_(styles.c.owner_id == user_id, styles.c.origin_id == user_id)  # copies of their words too
    their_styles = select(styles.c.images).where(theirs)
    for images in (await conn.execute(their_styles)).scalars():
        hashes += hashes_in(images)
    await drop_turns(conn, turn_ids)
    gone_styles = await conn.execute(delete(styles).where(theirs))
    gone_prefs = await conn.execute(delete(member_prefs).where(member_prefs.c.user_id == user_id))
    audit = await _anonymise_audit(conn, user_id)
    forgotten = Forgotten(
        results=len(turn_ids),
        prefs=bool(gone_prefs.rowcount),
        styles=int(gone_styles.rowcount or 0),
        audit_rows=audit,
    )
    return forgotten, hashes


async def _anonymise_audit(conn: AsyncConnection, user_id: int) -> int:
    """The member's audit rows keep their cost, under user 0, without the prompt, and their counter
    keys (`user:<id>`, `active:<id>`: which counters the job was charged on) name user 0 too. Only
    settled rows are left (forget() refuses while a reservation is held), so no release reads them."""
    t = quota_reservations
    rows = list(await conn.execute(select(t.c.id, t.c.counters).where(t.c.user_id == user_id)))
    mine = re.compile(rf"^(\w+):{user_id}$")
    for row in rows:
        counters = [
            [*entry[:1], mine.sub(rf"\g<1>:{ANONYMOUS}", str(entry[1])), *entry[2:]]
            if isinstance(entry, list) and len(entry) > 1
            else entry
            for entry in row.counters or []
        ]
        query = update(t).where(t.c.id == row.id).values(user_id=ANONYMOUS, prompt="", counters=counters)
        await conn.execute(query)
    return len(rows)
