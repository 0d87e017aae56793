"""The quota store: exact reserve → commit/refund on shared counters, plus rules, usage and the audit log.

Exactness comes from the database, not from Python: every charge is one conditional UPDATE
(`reserved += amount WHERE used + reserved + amount <= limit`) inside one transaction per reservation.
On PostgreSQL the UPDATE row-locks and READ COMMITTED re-evaluates the WHERE after the lock; on SQLite
the transaction's first statement is a write, so writers queue on the busy timeout instead of
failing. Counters are always locked in key order, so two reservations never deadlock.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar

from sqlalchemy import ColumnElement, Row, and_, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.billing.rules import (
    EPOCH,
    WINDOWS,
    AuditRow,
    Check,
    Cooldown,
    Refusal,
    Reservation,
    Rule,
    Usage,
    counter_start,
    resets_at,
    window_start,
)
from bot.billing.settle import kept, settled_row
from bot.i18n import Text
from bot.storage.db import Database, insert_for
from bot.storage.tables import cooldowns, quota_counters, quota_reservations, quota_rules, utcnow

log = logging.getLogger(__name__)

T = TypeVar("T")
LIKE_ESCAPE: Final = "\\"
RECOVERED: Final = "refunded: never finished (recovered at start-up)"

counters_pk = (quota_counters.c.guild_id, quota_counters.c.subject, quota_counters.c.window_start)


@dataclass(frozen=True, slots=True, order=True)
class Held:
    """One counter a reservation holds, and what it charged there (kept in the reservation's JSON)."""

    guild_id: int
    subject: str
    window_start: datetime
    cents: int
    units: bool

    def to_json(self) -> list[Any]:
        """[guild_id, subject, window_start ISO, charged, "credit" | "units"]."""
        return [self.guild_id, self.subject, self.window_start.isoformat(), self.cents, self.kind]

    @classmethod
    def from_json(cls, data: Sequence[Any]) -> Held:
        """Parse what to_json wrote."""
        guild_id, subject, start, cents, kind = data
        return cls(int(guild_id), str(subject), datetime.fromisoformat(start), int(cents), kind == "units")

    @property
    def kind(self) -> str:
        """'units' for released-on-commit counters (concurrency), else 'credit'."""
        return "units" if self.units else "credit"


class _Refused(Exception):
    """Carries a refusal out of the transaction, which rolls it back."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(str(refusal.label))
        self.refusal = refusal


def _key_of(held: Held) -> ColumnElement[bool]:
    """WHERE the counter's primary key matches."""
    t = quota_counters
    return and_(
        t.c.guild_id == held.guild_id, t.c.subject == held.subject, t.c.window_start == held.window_start
    )


def plan(checks: Sequence[Check], cost_cents: int, now: datetime) -> list[tuple[Check, Held]]:
    """Each check with the counter it charges, in key order (the lock order); duplicates refused."""
    pairs = [
        (
            c,
            Held(
                c.guild_id, c.subject, counter_start(c.window, now), c.amount(cost_cents), c.units is not None
            ),
        )
        for c in checks
    ]
    pairs.sort(key=lambda pair: (pair[1].guild_id, pair[1].subject, pair[1].window_start))
    keys = [(h.guild_id, h.subject, h.window_start) for _, h in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("two checks charge the same counter")
    return pairs


async def _charge(conn: AsyncConnection, held: Held, limit_cents: int | None) -> bool:
    """Reserve held.cents on the counter if it fits under the limit; False when it does not.

    One statement: the row is created holding the cents, or its reserved cents grow only if they
    still fit (the WHERE of the upsert). A fresh row fits whenever the cost is within the limit.
    """
    if held.cents == 0:
        return True  # nothing to add: a free job passes even a zero (blocked) or overdrawn limit
    if limit_cents is not None and held.cents > limit_cents:
        return False
    t = quota_counters
    key = {"guild_id": held.guild_id, "subject": held.subject, "window_start": held.window_start}
    insert = insert_for(conn.dialect.name, t).values(used_cents=0, reserved_cents=held.cents, **key)
    fits = None if limit_cents is None else t.c.used_cents + t.c.reserved_cents + held.cents <= limit_cents
    upsert = insert.on_conflict_do_update(
        index_elements=list(counters_pk),
        set_={"reserved_cents": t.c.reserved_cents + held.cents},
        where=fits,
    ).returning(t.c.reserved_cents)
    return (await conn.execute(upsert)).first() is not None


async def _counter(conn: AsyncConnection, held: Held) -> tuple[int, int]:
    """(used_cents, reserved_cents) of a counter, zeros when it has no row."""
    t = quota_counters
    row = (await conn.execute(select(t.c.used_cents, t.c.reserved_cents).where(_key_of(held)))).first()
    return (0, 0) if row is None else (int(row.used_cents), int(row.reserved_cents))


async def _refusal(conn: AsyncConnection, check: Check, held: Held, now: datetime) -> Refusal:
    """The refusal for a check that did not fit, with the counter as it stands."""
    used, reserved = await _counter(conn, held)
    limit = check.limit_cents if check.limit_cents is not None else 0
    return Refusal(check.label, limit, used, reserved, resets_at(check.window, now))


async def _release(conn: AsyncConnection, held: Held, *, keep: int) -> None:
    """Give back what a reservation held on one counter, counting `keep` cents of it as used."""
    if held.cents == 0:
        return
    t = quota_counters
    values: dict[str, Any] = {"reserved_cents": t.c.reserved_cents - held.cents}
    if keep:
        values["used_cents"] = t.c.used_cents + keep
    await conn.execute(update(t).where(_key_of(held)).values(values))


async def _pace(conn: AsyncConnection, cooldown: Cooldown, now: datetime) -> None:
    """Start the member's cooldown now, or raise _Refused when the previous one has not run out.

    One statement: the row is created, or moved to now only if its last job is old enough (the
    WHERE of the upsert). Concurrent commands of one member queue on that row: exactly one passes.
    """
    t = cooldowns
    key = {"guild_id": cooldown.guild_id, "user_id": cooldown.user_id}
    insert = insert_for(conn.dialect.name, t).values(last_at=now, **key)
    upsert = insert.on_conflict_do_update(
        index_elements=[t.c.guild_id, t.c.user_id],
        set_={"last_at": now},
        where=t.c.last_at <= now - timedelta(seconds=cooldown.seconds),
    ).returning(t.c.last_at)
    if (await conn.execute(upsert)).first() is not None:
        return
    where = and_(t.c.guild_id == cooldown.guild_id, t.c.user_id == cooldown.user_id)
    last = (await conn.execute(select(t.c.last_at).where(where))).scalar_one()
    ready = last + timedelta(seconds=cooldown.seconds)
    raise _Refused(Refusal(Text("rules.label.cooldown"), 0, 0, 0, None, ready_at=ready))


def _rule(row: Row[Any]) -> Rule:
    """A Rule from a quota_rules row."""
    return Rule(row.guild_id, row.scope, row.target_id, row.limit_cents, bool(row.blocked), row.window)


def _audit_row(row: Row[Any]) -> AuditRow:
    """An AuditRow from a quota_reservations row."""
    m = row._mapping
    return AuditRow(
        id=m["id"],
        guild_id=m["guild_id"],
        user_id=m["user_id"],
        cost_cents=m["cost_cents"],
        status=m["status"],
        kind=m["kind"],
        prompt=m["prompt"],
        provider=m["provider"],
        model=m["model"],
        outcome=m["outcome"],
        counters=list(m["counters"] or ()),
        created_at=m["created_at"],
        finished_at=m["finished_at"],
    )


def escape_like(text: str) -> str:
    """text with LIKE's wildcards (and the escape character itself) taken literally."""
    for char in (LIKE_ESCAPE, "%", "_"):
        text = text.replace(char, LIKE_ESCAPE + char)
    return text


class QuotaStore:
    """Reserves, commits and refunds credits; keeps the rules and the audit log."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def _write(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """One transaction, retried as a whole on lock contention (see Database.write)."""
        return await self.db.write(work)

    async def reserve(
        self,
        *,
        guild_id: int,
        user_id: int,
        cost_cents: int,
        checks: Sequence[Check],
        kind: str,
        prompt: str,
        provider: str | None = None,
        model: str | None = None,
        now: datetime | None = None,
        channel_id: int | None = None,
        owner: str | None = None,
        cooldown: Cooldown | None = None,
    ) -> Reservation | Refusal:
        """Hold cost_cents on every check's counter, all or nothing; a Refusal names the first misfit.

        With a cooldown, the member's last job must be old enough, and this job becomes the last one
        (in the same transaction: a job refused for any reason does not start a cooldown).
        """
        if cost_cents < 0:
            raise ValueError("a cost cannot be negative")
        now = now or utcnow()
        pairs = plan(checks, cost_cents, now)
        row = {
            "guild_id": guild_id,
            "user_id": user_id,
            "cost_cents": cost_cents,
            "status": "reserved",
            "kind": kind[:16],
            "prompt": prompt,
            "provider": None if provider is None else provider[:64],
            "model": None if model is None else model[:128],
            "counters": [held.to_json() for _, held in pairs],
            "created_at": now,
            "channel_id": channel_id,
            "owner": None if owner is None else owner[:40],
            "stage": "queued",
        }

        async def work(conn: AsyncConnection) -> int:
            # Everything that takes no row lock comes first, so the counters stay locked only
            # from their UPDATE to the COMMIT (on SQLite the first INSERT takes the write lock).
            t = quota_reservations
            reservation_id = int((await conn.execute(t.insert().values(row).returning(t.c.id))).scalar_one())
            if cooldown is not None and cooldown.seconds > 0:
                await _pace(conn, cooldown, now)
            for check, held in pairs:  # in key order: concurrent reservations lock counters alike
                if not await _charge(conn, held, check.limit_cents):
                    raise _Refused(await _refusal(conn, check, held, now))
            return reservation_id

        try:
            reservation_id = await self._write(work)
        except _Refused as refused:
            return refused.refusal
        return Reservation(reservation_id, cost_cents)

    async def _finish(
        self,
        reservation_id: int,
        status: str,
        outcome: str,
        actual: int | None = None,
        turn_id: int | None = None,
    ) -> bool:
        """Settle a reservation's counters (at `actual` cents, see settle.py); False if already settled."""
        t = quota_reservations
        query = (
            update(t)
            .where(and_(t.c.id == reservation_id, t.c.status == "reserved"))
            .values(status=status, outcome=outcome[:200], finished_at=utcnow(), turn_id=turn_id)
            .returning(t.c.counters, t.c.cost_cents)
        )

        async def work(conn: AsyncConnection) -> bool:
            if (row := (await conn.execute(query)).first()) is None:
                return False
            spend = status == "committed"
            for held in sorted(Held.from_json(item) for item in row.counters):
                keep = kept(held.cents, row.cost_cents, actual) if spend and not held.units else 0
                await _release(conn, held, keep=keep)
            if spend and (audit := settled_row(row.cost_cents, actual, outcome)) is not None:
                await conn.execute(update(t).where(t.c.id == reservation_id).values(audit))
            return True

        return await self._write(work)

    async def set_stage(self, reservation_id: int, stage: str) -> None:
        """Record that a held job moved on (queued → running); a settled job is left alone."""
        t = quota_reservations
        query = t.update().where(and_(t.c.id == reservation_id, t.c.status == "reserved")).values(stage=stage)
        await self._write(lambda conn: conn.execute(query))

    async def commit(
        self,
        reservation_id: int,
        *,
        outcome: str = "ok",
        actual_cents: int | None = None,
        turn_id: int | None = None,
    ) -> None:
        """The job ran: credits move reserved → used (`actual_cents` if less), units freed, and the
        result it delivered (`turn_id`) noted. Idempotent."""
        await self._finish(reservation_id, "committed", outcome, actual_cents, turn_id)

    async def refund(self, reservation_id: int, *, outcome: str) -> bool:
        """The job failed: everything held is released. Idempotent: False when it was not held."""
        return await self._finish(reservation_id, "refunded", outcome)

    async def usage(
        self, guild_id: int, subject: str, window: str | None, now: datetime | None = None
    ) -> Usage:
        """A counter's current window: used, reserved, when it started and when it resets."""
        now = now or utcnow()
        start = counter_start(window, now)
        async with self.db.connect() as conn:
            used, reserved = await _counter(conn, Held(guild_id, subject, start, 0, False))
        return Usage(used, reserved, start, resets_at(window, now))

    async def reset(self, guild_id: int, subject: str | None = None, *, now: datetime | None = None) -> int:
        """Zero used_cents in the current windows of a subject (or all of the guild's); rows changed."""
        now = now or utcnow()
        t = quota_counters
        starts = {EPOCH, *(window_start(w, now) for w in WINDOWS)}
        conditions = [t.c.guild_id == guild_id, t.c.window_start.in_(starts), t.c.used_cents != 0]
        if subject is not None:
            conditions.append(t.c.subject == subject)
        lock = select(*counters_pk).where(*conditions).order_by(*counters_pk).with_for_update()

        async def work(conn: AsyncConnection) -> int:
            if conn.dialect.name == "postgresql":
                await conn.execute(lock)  # take the row locks in key order, as reserve does
            return (await conn.execute(update(t).where(*conditions).values(used_cents=0))).rowcount

        return await self._write(work)

    async def set_rule(self, rule: Rule) -> None:
        """Create or replace the rule for (guild_id, scope, target_id)."""
        t = quota_rules
        query = insert_for(self.db.dialect, t).values(
            guild_id=rule.guild_id,
            scope=rule.scope,
            target_id=rule.target_id,
            limit_cents=rule.limit_cents,
            blocked=rule.blocked,
            window=rule.window,
            updated_at=utcnow(),
        )
        changed = ("limit_cents", "blocked", "window", "updated_at")
        query = query.on_conflict_do_update(
            index_elements=[t.c.guild_id, t.c.scope, t.c.target_id],
            set_={name: query.excluded[name] for name in changed},
        )
        await self._write(lambda conn: conn.execute(query))

    async def clear_rule(self, guild_id: int, scope: str, target_id: int) -> bool:
        """Delete a rule; False when there was none."""
        t = quota_rules
        query = delete(t).where(
            and_(t.c.guild_id == guild_id, t.c.scope == scope, t.c.target_id == target_id)
        )
        result = await self._write(lambda conn: conn.execute(query))
        return result.rowcount > 0

    async def rules(self, guild_id: int) -> list[Rule]:
        """The guild's rules, by scope then target."""
        t = quota_rules
        query = select(t).where(t.c.guild_id == guild_id).order_by(t.c.scope, t.c.target_id)
        async with self.db.connect() as conn:
            return [_rule(row) for row in await conn.execute(query)]

    async def audit(
        self, guild_id: int, *, user_id: int | None = None, text: str | None = None, limit: int = 20
    ) -> list[AuditRow]:
        """The guild's reservations, newest first, optionally one member's or matching prompt text."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        t = quota_reservations
        query = select(t).where(t.c.guild_id == guild_id)
        if user_id is not None:
            query = query.where(t.c.user_id == user_id)
        if text:
            query = query.where(t.c.prompt.ilike(f"%{escape_like(text)}%", escape=LIKE_ESCAPE))
        query = query.order_by(t.c.id.desc()).limit(limit)
        async with self.db.connect() as conn:
            return [_audit_row(row) for row in await conn.execute(query)]

    async def recover(self, *, older_than: timedelta, now: datetime | None = None) -> int:
        """Refund every reservation still 'reserved' after older_than (a crash left it); how many."""
        t = quota_reservations
        cutoff = (now or utcnow()) - older_than
        query = select(t.c.id).where(and_(t.c.status == "reserved", t.c.created_at < cutoff)).order_by(t.c.id)
        async with self.db.connect() as conn:
            stale = list((await conn.execute(query)).scalars())
        refunded = [await self._finish(reservation_id, "refunded", RECOVERED) for reservation_id in stale]
        if stale:
            log.warning("refunded %d quota reservations that never finished", sum(refunded))
        return sum(refunded)
