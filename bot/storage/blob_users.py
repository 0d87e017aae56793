"""Which stored images something still uses: a finished turn (input or output) or a saved style.

Deleting a result, forgetting a member and pruning old turns all ask this before removing a file.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import String, and_, cast, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage.tables import styles, turns

#: Up to this many hashes are looked for one by one (a LIKE each); more are found in one pass over
#: every finished turn and style (forgetting a member or pruning old turns asks about thousands).
ONE_BY_ONE = 16


async def blobs_still_used(conn: AsyncConnection, sha256s: Sequence[str]) -> set[str]:
    """Which of these blobs a finished turn or a saved style still uses."""
    wanted = list(dict.fromkeys(sha256s))
    if len(wanted) > ONE_BY_ONE:
        return await _used_in_one_pass(conn, set(wanted))
    used: set[str] = set()
    turn_images = cast(turns.c.input_images, String) + cast(turns.c.output_images, String)
    style_images = cast(styles.c.images, String)
    for sha in wanted:
        in_turn = select(turns.c.id).where(
            and_(turns.c.status == "done", turn_images.contains(sha, autoescape=True))
        )
        in_style = select(styles.c.id).where(style_images.contains(sha, autoescape=True))
        for query in (in_turn, in_style):
            if (await conn.execute(query.limit(1))).first() is not None:
                used.add(sha)
                break
    return used


async def _used_in_one_pass(conn: AsyncConnection, wanted: set[str]) -> set[str]:
    """The wanted hashes that any finished turn or style names, read in one pass over each table."""
    used: set[str] = set()
    done = select(turns.c.input_images, turns.c.output_images).where(turns.c.status == "done")
    async for row in await conn.stream(done):
        used |= wanted & {*hashes_in(row.input_images), *hashes_in(row.output_images)}
    async for row in await conn.stream(select(styles.c.images)):
        used |= wanted & set(hashes_in(row.images))
    return used


def hashes_in(images: Iterable[Any]) -> list[str]:
    """The blob hashes in a JSON list of blob refs (as turns and styles store them)."""
    return [i["sha256"] for i in images or () if isinstance(i, dict) and isinstance(i.get("sha256"), str)]
