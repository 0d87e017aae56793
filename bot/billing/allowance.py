"""A member's credit counters as they stand, counted as admission counts them (for /usage and /help)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from bot.billing.rules import (
    OPERATOR_GUILD,
    Rule,
    effective_user_rule,
    guild_rule,
    user_check,
    user_subject,
)
from bot.billing.store import QuotaStore


@dataclass(frozen=True, slots=True)
class Allowance:
    """One counter: used and reserved cents, its limit (None: unlimited), window, block and reset."""

    used_cents: int
    reserved_cents: int
    limit_cents: int | None
    window: str
    blocked: bool = False
    resets_at: datetime | None = None

    @property
    def left_cents(self) -> int | None:
        """What may still be reserved in this window (None: no limit)."""
        if self.blocked:
            return 0
        if self.limit_cents is None:
            return None
        return max(0, self.limit_cents - self.used_cents - self.reserved_cents)


async def member_allowance(
    store: QuotaStore, guild_id: int, user_id: int, role_ids: Collection[int]
) -> tuple[Allowance, Allowance | None]:
    """A member's own counter on a server (the rule admission applies to them) and the server pool's
    (None without a pool rule)."""
    rules = await store.rules(guild_id)
    rule = effective_user_rule(rules, user_id, role_ids)
    check = user_check(guild_id, user_id, rule)
    window = check.window or "day"
    mine = await store.usage(guild_id, check.subject, window)
    blocked = bool(rule and rule.blocked)
    own = Allowance(mine.used_cents, mine.reserved_cents, check.limit_cents, window, blocked, mine.resets_at)
    pool = guild_rule(rules)
    return own, await pool_allowance(store, guild_id, pool) if pool is not None else None


async def pool_allowance(store: QuotaStore, guild_id: int, pool: Rule | None) -> Allowance:
    """The server pool's counter under its rule (without one: today's, counted but unlimited)."""
    window = pool.window if pool is not None else "day"
    shared = await store.usage(guild_id, "guild", window)
    limit, blocked = (pool.limit_cents, pool.blocked) if pool is not None else (None, False)
    return Allowance(shared.used_cents, shared.reserved_cents, limit, window, blocked, shared.resets_at)


async def dm_allowance(store: QuotaStore, user_id: int, limit_cents: int, window: str) -> Allowance:
    """A user's allowance in the bot's DMs (DM_CREDITS per DM_WINDOW)."""
    mine = await store.usage(OPERATOR_GUILD, user_subject(user_id), window)
    return Allowance(mine.used_cents, mine.reserved_cents, limit_cents, window, resets_at=mine.resets_at)
