"""Turn records: one row per job, linked parent→child into conversations, found by Discord message."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import CTE, Integer, Row, and_, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage.blob_users import blobs_still_used
from bot.storage.db import Database, insert_for
from bot.storage.tables import turn_messages, turns, utcnow

TurnKind = Literal["imagine", "edit", "upscale", "refine", "reroll", "vary"]
TurnStatus = Literal["done", "failed", "deleted"]


@dataclass(frozen=True, slots=True)
class BlobRef:
    """A stored image: its content hash plus what callers need without reading the file."""

    sha256: str
    mime: str
    size: int
    width: int
    height: int

    def to_json(self) -> dict[str, Any]:
        """The JSON object kept in turns.input_images / output_images."""
        return {
            "sha256": self.sha256,
            "mime": self.mime,
            "width": self.width,
            "height": self.height,
            "size": self.size,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BlobRef:
        """Parse what to_json wrote."""
        return cls(
            sha256=str(data["sha256"]),
            mime=str(data["mime"]),
            size=int(data["size"]),
            width=int(data["width"]),
            height=int(data["height"]),
        )


@dataclass(frozen=True, slots=True)
class TurnRecord:
    """One stored turn, with the Discord messages that show it."""

    id: int
    guild_id: int | None
    channel_id: int
    user_id: int
    parent_id: int | None
    root_id: int | None
    kind: str
    status: str
    prompt: str
    provider: str | None
    model: str | None
    options: dict[str, Any]
    input_images: tuple[BlobRef, ...]
    output_images: tuple[BlobRef, ...]
    model_text: str | None
    provider_state: dict[str, Any]
    error: str | None
    created_at: datetime
    updated_at: datetime
    message_ids: tuple[int, ...] = ()

    @property
    def seed(self) -> int | None:
        """The seed its images were asked for with (kept in its options), if any."""
        seed = self.options.get("seed")
        return seed if isinstance(seed, int) and not isinstance(seed, bool) else None

    @property
    def usage(self) -> dict[str, Any]:
        """The token counts the provider reported for its images (kept in its options), if any."""
        usage = self.options.get("usage")
        return dict(usage) if isinstance(usage, dict) else {}


@dataclass(kw_only=True, slots=True)
class NewTurn:
    """A turn to insert (keywords only: there are many optional fields)."""

    guild_id: int | None = None
    channel_id: int
    user_id: int
    parent_id: int | None = None
    kind: TurnKind
    status: TurnStatus = "done"
    prompt: str = ""
    provider: str | None = None
    model: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    input_images: Sequence[BlobRef] = ()
    output_images: Sequence[BlobRef] = ()
    model_text: str | None = None
    provider_state: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def values(self) -> dict[str, Any]:
        """Column values for the INSERT (root_id is set afterwards)."""
        if self.kind not in get_args(TurnKind):
            raise ValueError(f"unknown turn kind {self.kind!r}")
        if self.status not in get_args(TurnStatus):
            raise ValueError(f"unknown turn status {self.status!r}")
        now = utcnow()
        return {
            "guild_id": self.guild_id,
            "channel_id": self.channel_id,
            "user_id": self.user_id,
            "parent_id": self.parent_id,
            "kind": self.kind,
            "status": self.status,
            "prompt": self.prompt,
            "provider": self.provider,
            "model": self.model,
            "options": dict(self.options),
            "input_images": [ref.to_json() for ref in self.input_images],
            "output_images": [ref.to_json() for ref in self.output_images],
            "model_text": self.model_text,
            "provider_state": dict(self.provider_state),
            "error": self.error,
            "created_at": now,
            "updated_at": now,
        }


def _record(row: Row[Any], message_ids: Sequence[int] = ()) -> TurnRecord:
    """Build a TurnRecord from a turns row."""
    m = row._mapping
    return TurnRecord(
        id=m["id"],
        guild_id=m["guild_id"],
        channel_id=m["channel_id"],
        user_id=m["user_id"],
        parent_id=m["parent_id"],
        root_id=m["root_id"],
        kind=m["kind"],
        status=m["status"],
        prompt=m["prompt"],
        provider=m["provider"],
        model=m["model"],
        options=dict(m["options"] or {}),
        input_images=tuple(BlobRef.from_json(x) for x in m["input_images"] or ()),
        output_images=tuple(BlobRef.from_json(x) for x in m["output_images"] or ()),
        model_text=m["model_text"],
        provider_state=dict(m["provider_state"] or {}),
        error=m["error"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        message_ids=tuple(message_ids),
    )


async def _message_ids(conn: AsyncConnection, turn_ids: Sequence[int]) -> dict[int, list[int]]:
    """The attached Discord message ids of each turn, in id order."""
    found: dict[int, list[int]] = {tid: [] for tid in turn_ids}
    if not turn_ids:
        return found
    query = (
        select(turn_messages.c.turn_id, turn_messages.c.message_id)
        .where(turn_messages.c.turn_id.in_(turn_ids))
        .order_by(turn_messages.c.message_id)
    )
    for turn_id, message_id in await conn.execute(query):
        found[turn_id].append(message_id)
    return found


async def _fetch(conn: AsyncConnection, turn_id: int) -> TurnRecord | None:
    """One turn with its message ids, on an open connection."""
    row = (await conn.execute(select(turns).where(turns.c.id == turn_id))).first()
    if row is None:
        return None
    ids = await _message_ids(conn, [turn_id])
    return _record(row, ids[turn_id])


async def _root_of(conn: AsyncConnection, parent_id: int) -> int:
    """The conversation root a child of parent_id belongs to."""
    query = select(turns.c.id, turns.c.root_id).where(turns.c.id == parent_id)
    row = (await conn.execute(query)).first()
    if row is None:
        raise LookupError(f"parent turn {parent_id} does not exist")
    return int(row.root_id if row.root_id is not None else row.id)


class TurnStore:
    """Reads and writes turn records."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, turn: NewTurn) -> TurnRecord:
        """Insert a turn and set its root_id, all in one transaction."""
        values = turn.values()

        async def work(conn: AsyncConnection) -> TurnRecord | None:
            if turn.parent_id is not None:
                values["root_id"] = await _root_of(conn, turn.parent_id)
            result = await conn.execute(turns.insert().values(values).returning(turns.c.id))
            turn_id = int(result.scalar_one())
            if turn.parent_id is None:
                await conn.execute(update(turns).where(turns.c.id == turn_id).values(root_id=turn_id))
            return await _fetch(conn, turn_id)

        record = await self.db.write(work)
        assert record is not None  # inserted above, in the same transaction
        return record

    async def attach_messages(self, turn_id: int, channel_id: int, message_ids: Sequence[int]) -> None:
        """Link Discord messages to a turn; ids already attached are left alone."""
        if not message_ids:
            return
        unique = dict.fromkeys(message_ids)
        rows = [{"message_id": m, "turn_id": turn_id, "channel_id": channel_id} for m in unique]
        query = insert_for(self.db.dialect, turn_messages).on_conflict_do_nothing(
            index_elements=[turn_messages.c.message_id]
        )
        await self.db.write(lambda conn: conn.execute(query, rows))

    async def mark_failed(self, turn_id: int, error: str) -> None:
        """Record that a turn failed, and why."""
        query = update(turns).where(turns.c.id == turn_id).values(status="failed", error=error)
        await self.db.write(lambda conn: conn.execute(query))

    async def mark_deleted(self, turn_id: int) -> bool:
        """A delivered result was deleted: it is never shown, used or continued again (False if it
        was not a finished turn). Its message links stay, so its message is known to be deleted."""
        query = (
            update(turns)
            .where(and_(turns.c.id == turn_id, turns.c.status == "done"))
            .values(status="deleted", updated_at=utcnow())
        )
        result = await self.db.write(lambda conn: conn.execute(query))
        return bool(result.rowcount)

    async def blobs_in_use(self, sha256s: Sequence[str]) -> set[str]:
        """Which of these blobs a finished turn or a saved style still uses."""
        async with self.db.connect() as conn:
            return await blobs_still_used(conn, sha256s)

    async def get(self, turn_id: int) -> TurnRecord | None:
        """A turn by id."""
        async with self.db.connect() as conn:
            return await _fetch(conn, turn_id)

    async def by_message(self, message_id: int) -> TurnRecord | None:
        """The turn a Discord message shows, if any."""
        query = select(turn_messages.c.turn_id).where(turn_messages.c.message_id == message_id)
        async with self.db.connect() as conn:
            turn_id = (await conn.execute(query)).scalar_one_or_none()
            return None if turn_id is None else await _fetch(conn, turn_id)

    async def lineage(self, turn_id: int, depth: int) -> tuple[list[TurnRecord], bool]:
        """Up to depth turns ending with turn_id, oldest first, and whether older ones were cut off."""
        if depth < 1:
            raise ValueError("depth must be at least 1")
        chain = _ancestors(turn_id, depth + 1)
        query = (
            select(turns, chain.c.level).join(chain, chain.c.id == turns.c.id).order_by(chain.c.level.desc())
        )
        async with self.db.connect() as conn:
            rows = list(await conn.execute(query))
            truncated = len(rows) > depth
            rows = rows[len(rows) - depth :] if truncated else rows
            ids = await _message_ids(conn, [row.id for row in rows])
        return [_record(row, ids[row.id]) for row in rows], truncated

    async def latest_in_channel(self, channel_id: int) -> TurnRecord | None:
        """The newest successful turn in the channel that produced at least one image."""
        query = (
            select(turns.c.id)
            .where(
                and_(
                    turns.c.channel_id == channel_id,
                    turns.c.status == "done",
                    func.json_array_length(turns.c.output_images) > 0,
                )
            )
            .order_by(turns.c.id.desc())
            .limit(1)
        )
        async with self.db.connect() as conn:
            turn_id = (await conn.execute(query)).scalar_one_or_none()
            return None if turn_id is None else await _fetch(conn, turn_id)


def _ancestors(turn_id: int, limit: int) -> CTE:
    """A recursive CTE of (id, level): the turn at level 1, its parent at 2, … up to limit levels."""
    start = select(turns.c.id, turns.c.parent_id, literal(1, Integer).label("level")).where(
        turns.c.id == turn_id
    )
    chain = start.cte("lineage", recursive=True)
    step = (
        select(turns.c.id, turns.c.parent_id, (chain.c.level + 1).label("level"))
        .join(chain, turns.c.id == chain.c.parent_id)
        .where(chain.c.level < limit)
    )
    return chain.union_all(step)
