"""Which stored images something still uses: a finished turn (input or output) or a saved style.

Deleting a result, forgetting a member and pruning old turns all ask this before removing a file.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import String, and_, cast, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage.tables import styles, turns


async def blobs_still_used(conn: AsyncConnection, sha256s: Sequence[str]) -> set[str]:
    """Which of these blobs a finished turn or a saved style still uses."""
    used: set[str] = set()
    turn_images = cast(turns.c.input_images, String) + cast(turns.c.output_images, String)
    style_images = cast(styles.c.images, String)
    for sha in dict.fromkeys(sha256s):
        in_turn = select(turns.c.id).where(
            and_(turns.c.status == "done", turn_images.contains(sha, autoescape=True))
        )
        in_style = select(styles.c.id).where(style_images.contains(sha, autoescape=True))
        for query in (in_turn, in_style):
            if (await conn.execute(query.limit(1))).first() is not None:
                used.add(sha)
                break
    return used
