"""Per-member preferences (/prefs): one JSON document per member, across servers, with a short cache."""

from __future__ import annotations

import time
from collections.abc import Callable

from pydantic import BaseModel, Field
from sqlalchemy import delete, select

from bot.storage.db import Database, insert_for
from bot.storage.tables import member_prefs, utcnow

#: Seconds a member's preferences are served from memory: a command must know `private` before it
#: answers Discord, and another process's /prefs set shows here within this time.
CACHE_TTL = 30.0
#: Cached members kept at most (expired entries go first, then the oldest).
CACHE_SIZE = 10_000
MAX_SUFFIX = 500


class MemberPrefs(BaseModel):
    """What a member chose as their defaults; every field has a default so old rows keep loading."""

    model_config = {"extra": "ignore"}

    model: str | None = None
    aspect_ratio: str | None = None
    resolution: str | None = None
    count: int | None = Field(default=None, ge=1, le=4)
    #: Added to every prompt after ", " (empty: nothing added).
    prompt_suffix: str = Field(default="", max_length=MAX_SUFFIX)
    #: Results as ephemeral messages only the member sees.
    private: bool = False

    @property
    def empty(self) -> bool:
        """Whether nothing is set (the defaults)."""
        return self == MemberPrefs()


class PrefsStore:
    """Reads and writes members' preferences; reads are cached for CACHE_TTL seconds."""

    def __init__(
        self, db: Database, *, ttl: float = CACHE_TTL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.db = db
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[int, tuple[float, MemberPrefs]] = {}

    def cached(self, user_id: int) -> MemberPrefs | None:
        """The member's preferences if read or written within the TTL (no I/O), else None."""
        entry = self._cache.get(user_id)
        if entry is None or entry[0] <= self.clock():
            return None
        return entry[1]

    async def get(self, user_id: int) -> MemberPrefs:
        """The member's preferences (the defaults when none are stored), from the cache when fresh."""
        if (found := self.cached(user_id)) is not None:
            return found
        async with self.db.connect() as conn:
            row = (
                await conn.execute(select(member_prefs.c.data).where(member_prefs.c.user_id == user_id))
            ).first()
        prefs = MemberPrefs.model_validate(row[0]) if row else MemberPrefs()
        self._remember(user_id, prefs)
        return prefs

    async def set(self, user_id: int, prefs: MemberPrefs) -> None:
        """Replace the member's preferences."""
        data = prefs.model_dump(mode="json")
        insert = insert_for(self.db.dialect, member_prefs).values(
            user_id=user_id, data=data, updated_at=utcnow()
        )
        upsert = insert.on_conflict_do_update(
            index_elements=[member_prefs.c.user_id], set_={"data": data, "updated_at": utcnow()}
        )
        await self.db.write(lambda conn: conn.execute(upsert))
        self._remember(user_id, prefs)

    async def reset(self, user_id: int) -> bool:
        """Forget the member's preferences; whether any were stored."""
        query = delete(member_prefs).where(member_prefs.c.user_id == user_id)
        result = await self.db.write(lambda conn: conn.execute(query))
        self._remember(user_id, MemberPrefs())
        return bool(result.rowcount)

    def evict(self, user_id: int) -> None:
        """Drop a member's cached preferences (their row was deleted elsewhere, e.g. by /forget)."""
        self._cache.pop(user_id, None)

    def _remember(self, user_id: int, prefs: MemberPrefs) -> None:
        """Cache a member's preferences, keeping the cache bounded."""
        now = self.clock()
        self._cache.pop(user_id, None)  # re-inserted last: the dict's order is the age order
        self._cache[user_id] = (now + self.ttl, prefs)
        if len(self._cache) > CACHE_SIZE:
            for key in [k for k, (expires, _) in self._cache.items() if expires <= now]:
                del self._cache[key]
            while len(self._cache) > CACHE_SIZE:
                del self._cache[next(iter(self._cache))]
