"""Reports on the audit log: credits per day, the top spenders, and the jobs as a CSV export.

Days are UTC calendar days, like the quota windows. They are bucketed in SQL with a CASE over the
day boundaries computed here (portable: SQLite and PostgreSQL agree on comparisons of timestamps,
not on date functions or time zones), so a report reads one row per day and status, however many
jobs there were.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final

from sqlalchemy import case, func, select

from bot.billing.costs import credits
from bot.billing.settle import RESERVED_NOTE
from bot.billing.store import LIKE_ESCAPE, escape_like
from bot.jobs.ids import job_code
from bot.storage.db import Database
from bot.storage.forget import ANONYMOUS
from bot.storage.tables import quota_reservations, turns

#: The days a usage chart covers, today included.
HISTORY_DAYS: Final = 30
#: Rows an export holds at most (newest first), and the members a top list names.
EXPORT_CAP: Final = 5000
TOP_MEMBERS: Final = 5
#: A reservation's status while its job runs, and once its credits are spent.
HELD, SPENT = "reserved", "committed"
#: A spreadsheet runs a cell starting with one of these as a formula: such text is quoted.
FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")
COLUMNS: Final = (
    "job",
    "audit_id",
    "time_utc",
    "member_id",
    "kind",
    "provider",
    "model",
    "resolution",
    "count",
    "reserved_credits",
    "charged_credits",
    "status",
    "outcome",
    "channel_id",
    "prompt",
)


@dataclass(frozen=True, slots=True)
class DaySpend:
    """One UTC day's credits, in cents: spent (committed) and reserved (jobs still running)."""

    day: date
    spent_cents: int = 0
    reserved_cents: int = 0


@dataclass(frozen=True, slots=True)
class JobLine:
    """One job of an export: its audit row, and what its turn adds (when one was found)."""

    audit_id: int
    created_at: datetime
    user_id: int
    kind: str
    provider: str | None
    model: str | None
    cost_cents: int
    status: str
    outcome: str | None
    channel_id: int | None
    prompt: str
    turn_id: int | None = None
    resolution: str | None = None
    count: int | None = None


def day_start(day: date) -> datetime:
    """Midnight UTC at the start of a day."""
    return datetime.combine(day, time(), UTC)


def days_between(first: date, last: date) -> list[date]:
    """Every day from first to last, both included."""
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


async def daily_spend(
    db: Database, guild_id: int, first: date, last: date, *, user_id: int | None = None
) -> list[DaySpend]:
    """Credits per UTC day from first to last (every day, zeros too) on a server, or one member's."""
    days = days_between(first, last)
    if not days:
        return []
    t = quota_reservations
    edges = [day_start(day + timedelta(days=1)) for day in days]
    bucket = case(*[(t.c.created_at < edge, n) for n, edge in enumerate(edges)], else_=len(days))
    where = [
        t.c.guild_id == guild_id,
        t.c.created_at >= day_start(first),
        t.c.created_at < edges[-1],
        t.c.status.in_((HELD, SPENT)),
    ]
    if user_id is not None:
        where.append(t.c.user_id == user_id)
    # Grouped over a subquery: PostgreSQL matches a GROUP BY to its SELECT by text, and the
    # CASE's parameters would be numbered differently in each.
    rows = select(bucket.label("n"), t.c.status, t.c.cost_cents).where(*where).subquery()
    query = select(rows.c.n, rows.c.status, func.sum(rows.c.cost_cents)).group_by(rows.c.n, rows.c.status)
    spent = [0] * len(days)
    held = [0] * len(days)
    async with db.connect() as conn:
        for n, status, cents in await conn.execute(query):
            if 0 <= n < len(days):
                (spent if status == SPENT else held)[n] += int(cents or 0)
    return [DaySpend(day, spent[n], held[n]) for n, day in enumerate(days)]


async def top_members(
    db: Database, guild_id: int, since: datetime, *, limit: int = TOP_MEMBERS
) -> list[tuple[int, int]]:
    """(member id, cents) of the server's biggest spenders since a moment (charged jobs: running
    ones have spent nothing yet); forgotten members (their rows are anonymous) are left out."""
    t = quota_reservations
    total = func.sum(t.c.cost_cents).label("total")
    query = (
        select(t.c.user_id, total)
        .where(
            t.c.guild_id == guild_id,
            t.c.created_at >= since,
            t.c.status == SPENT,  # what was spent: running jobs are not yet
            t.c.user_id != ANONYMOUS,
        )
        .group_by(t.c.user_id)
        .order_by(total.desc(), t.c.user_id)
        .limit(limit)
    )
    async with db.connect() as conn:
        return [(int(user), int(cents or 0)) for user, cents in await conn.execute(query) if cents]


def _line(row: Any) -> JobLine:
    """A JobLine from a quota_reservations row."""
    return JobLine(
        audit_id=row.id,
        created_at=row.created_at,
        user_id=row.user_id,
        kind=row.kind,
        provider=row.provider,
        model=row.model,
        cost_cents=row.cost_cents,
        status=row.status,
        outcome=row.outcome,
        channel_id=row.channel_id,
        prompt=row.prompt,
    )


async def export_jobs(
    db: Database,
    guild_id: int,
    *,
    user_id: int | None = None,
    text: str | None = None,
    cap: int = EXPORT_CAP,
) -> tuple[list[JobLine], bool]:
    """The server's jobs as /audit filters them, newest first, at most `cap`; and whether there were
    more. A delivered job's id, resolution and image count come from the result it recorded."""
    t = quota_reservations
    turn = turns.alias("turn")
    result = (turn.c.id, turn.c.provider, turn.c.model, turn.c.options)
    query = (
        select(t, *(column.label(f"result_{column.name}") for column in result))
        .select_from(t.outerjoin(turn, turn.c.id == t.c.turn_id))
        .where(t.c.guild_id == guild_id)
    )
    if user_id is not None:
        query = query.where(t.c.user_id == user_id)
    if text:
        query = query.where(t.c.prompt.ilike(f"%{escape_like(text)}%", escape=LIKE_ESCAPE))
    query = query.order_by(t.c.id.desc()).limit(cap + 1)
    async with db.connect() as conn:
        lines = [_with_turn(_line(row), row) for row in await conn.execute(query)]
    return lines[:cap], len(lines) > cap


def _with_turn(line: JobLine, row: Any) -> JobLine:
    """The job with its result's id, resolution and image count, and the provider and model that
    made it (the reservation names them only when the member chose them); as it is without one (a
    job that failed, or whose result was forgotten or pruned)."""
    if row.result_id is None:
        return line
    options = row.result_options if isinstance(row.result_options, dict) else {}
    resolution, count = options.get("resolution"), options.get("count")
    return replace(
        line,
        provider=row.result_provider or line.provider,
        model=row.result_model or line.model,
        turn_id=int(row.result_id),
        resolution=str(resolution) if resolution else None,
        count=count if isinstance(count, int) and not isinstance(count, bool) else None,
    )


def _cell(text: str | None) -> str:
    """Text for a cell, never read as a formula by a spreadsheet."""
    if not text:
        return ""
    return "'" + text if text.startswith(FORMULA_START) else text


def _amounts(line: JobLine) -> tuple[str, str]:
    """(reserved, charged) credits of a job; charged is empty while it runs."""
    note = RESERVED_NOTE.match(line.outcome or "")
    reserved = note["amount"] if note else credits(line.cost_cents)
    if line.status == SPENT:
        return reserved, credits(line.cost_cents)
    return reserved, "" if line.status == HELD else "0"


def csv_row(line: JobLine) -> list[str]:
    """One job as the export's columns."""
    reserved, charged = _amounts(line)
    moment = line.created_at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return [
        job_code(line.turn_id) if line.turn_id else "",
        str(line.audit_id),
        moment,
        str(line.user_id),
        line.kind,
        _cell(line.provider),
        _cell(line.model),
        line.resolution or "",
        "" if line.count is None else str(line.count),
        reserved,
        charged,
        line.status,
        _cell(line.outcome),
        "" if line.channel_id is None else str(line.channel_id),
        _cell(line.prompt),
    ]


def _csv_line(cells: Sequence[str]) -> str:
    """One CSV record (quoted as needed, CRLF-terminated)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(cells)
    return out.getvalue()


def audit_csv(lines: Iterable[JobLine], max_bytes: int) -> tuple[bytes, int]:
    """The jobs as a UTF-8 CSV (with a byte-order mark, for spreadsheets) of at most max_bytes;
    the bytes and how many jobs fit."""
    records = [_csv_line(COLUMNS)]
    size = len(records[0].encode("utf-8-sig"))
    for line in lines:
        record = _csv_line(csv_row(line))
        size += len(record.encode("utf-8"))
        if size > max_bytes:
            break
        records.append(record)
    return "".join(records).encode("utf-8-sig"), len(records) - 1
