"""A member's finished results, newest first: the pages of /history and /show's suggestions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, String, and_, cast, func, select

from bot.storage.db import Database
from bot.storage.tables import turns
from bot.storage.turns import BlobRef

#: How a private result's options say so.
PRIVATE_MARK = '"private": true'


@dataclass(frozen=True, slots=True)
class ResultEntry:
    """One finished result as a gallery lists it: id, where, prompt and its first image."""

    turn_id: int
    guild_id: int | None
    prompt: str
    image: BlobRef | None
    created_at: datetime


def _shown(user_id: int, guild_id: int | None, private: bool) -> ColumnElement[bool]:
    """A member's results that can be shown: finished, not deleted, with an image (in one server;
    without the private ones, which only their requester sees)."""
    clauses = [
        turns.c.user_id == user_id,
        turns.c.status == "done",
        func.json_array_length(turns.c.output_images) > 0,
    ]
    if guild_id is not None:
        clauses.append(turns.c.guild_id == guild_id)
    if not private:  # the options as stored (json.dumps on SQLite and PostgreSQL alike)
        clauses.append(~cast(turns.c.options, String).contains(PRIVATE_MARK, autoescape=True))
    return and_(*clauses)


def _entry(row: Any) -> ResultEntry:
    """A ResultEntry from a selected row."""
    images = row.output_images or []
    return ResultEntry(
        turn_id=int(row.id),
        guild_id=row.guild_id,
        prompt=row.prompt or "",
        image=BlobRef.from_json(images[0]) if images else None,
        created_at=row.created_at,
    )


async def recent_results(
    db: Database,
    user_id: int,
    *,
    guild_id: int | None = None,
    private: bool = True,
    limit: int,
    offset: int = 0,
) -> list[ResultEntry]:
    """A member's finished results, newest first (only those made in `guild_id` when given, and
    private ones only when `private`)."""
    query = (
        select(turns.c.id, turns.c.guild_id, turns.c.prompt, turns.c.output_images, turns.c.created_at)
        .where(_shown(user_id, guild_id, private))
        .order_by(turns.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    async with db.connect() as conn:
        return [_entry(row) for row in await conn.execute(query)]


async def count_results(
    db: Database, user_id: int, *, guild_id: int | None = None, private: bool = True
) -> int:
    """How many finished results a member has (as recent_results lists them)."""
    query = select(func.count()).select_from(turns).where(_shown(user_id, guild_id, private))
    async with db.connect() as conn:
        return int((await conn.execute(query)).scalar_one())
