"""Quotas: windows, rule resolution, and the store's exact reserve/commit/refund on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.billing.rules import (
    CONCURRENT,
    EPOCH,
    Check,
    Cooldown,
    Refusal,
    Reservation,
    Rule,
    Usage,
    concurrency_check,
    effective_user_rule,
    user_check,
    window_end,
    window_start,
)
from bot.billing.store import QuotaStore
from bot.jobs.recovery import Recovery
from bot.storage.db import Database, alembic_config, upgrade
from bot.storage.tables import quota_counters, quota_reservations
from tests.pg import temp_database

ROOT = Path(__file__).resolve().parents[2]
G, U = 111, 7
#: A Wednesday afternoon.
NOW = datetime(2025, 3, 12, 15, 30, tzinfo=UTC)
TOMORROW = datetime(2025, 3, 13, tzinfo=UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """A UTC datetime."""
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database: a SQLite file or a fresh PostgreSQL database."""
    async with temp_database(request.param, tmp_path / "quotas.db") as url:
        yield url


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    """A migrated database."""
    database = await Database.open(db_url)
    yield database
    await database.close()


@pytest.fixture
def store(db: Database) -> QuotaStore:
    """A quota store on the test database."""
    return QuotaStore(db)


def daily(limit: int | None, subject: str = f"user:{U}", label: str = "your daily limit") -> Check:
    """A daily credit check in guild G."""
    return Check(G, subject, "day", limit, label)


async def reserve(
    store: QuotaStore, cost: int, *checks: Check, now: datetime = NOW, user: int = U, prompt: str = "a cat"
) -> Reservation | Refusal:
    """Reserve cost cents in guild G."""
    return await store.reserve(
        guild_id=G, user_id=user, cost_cents=cost, checks=checks, kind="imagine", prompt=prompt, now=now
    )


async def held(store: QuotaStore, cost: int, *checks: Check, now: datetime = NOW) -> Reservation:
    """Reserve and insist that it fits."""
    outcome = await reserve(store, cost, *checks, now=now)
    assert isinstance(outcome, Reservation), outcome
    return outcome


async def day_usage(store: QuotaStore, subject: str = f"user:{U}") -> tuple[int, int]:
    """(used, reserved) of a daily counter in guild G today."""
    usage = await store.usage(G, subject, "day", NOW)
    return usage.used_cents, usage.reserved_cents


# --- windows ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "now", "start", "end"),
    [
        ("day", NOW, utc(2025, 3, 12), utc(2025, 3, 13)),
        ("day", utc(2025, 3, 12), utc(2025, 3, 12), utc(2025, 3, 13)),
        ("day", utc(2024, 12, 31, 23, 59, 59), utc(2024, 12, 31), utc(2025, 1, 1)),
        ("day", utc(2024, 2, 28, 12), utc(2024, 2, 28), utc(2024, 2, 29)),
        ("week", NOW, utc(2025, 3, 10), utc(2025, 3, 17)),
        ("week", utc(2025, 3, 16, 23, 59), utc(2025, 3, 10), utc(2025, 3, 17)),
        ("week", utc(2025, 3, 17), utc(2025, 3, 17), utc(2025, 3, 24)),
        ("week", utc(2025, 1, 1, 8), utc(2024, 12, 30), utc(2025, 1, 6)),
        ("week", utc(2025, 2, 27), utc(2025, 2, 24), utc(2025, 3, 3)),
        ("month", NOW, utc(2025, 3, 1), utc(2025, 4, 1)),
        ("month", utc(2025, 1, 31, 23), utc(2025, 1, 1), utc(2025, 2, 1)),
        ("month", utc(2024, 2, 29, 5), utc(2024, 2, 1), utc(2024, 3, 1)),
        ("month", utc(2024, 12, 15), utc(2024, 12, 1), utc(2025, 1, 1)),
        ("month", utc(2024, 12, 31, 23, 59, 59), utc(2024, 12, 1), utc(2025, 1, 1)),
    ],
)
def test_windows_are_utc_calendar_windows(window: str, now: datetime, start: datetime, end: datetime) -> None:
    assert (window_start(window, now), window_end(window, now)) == (start, end)


def test_windows_convert_other_time_zones_to_utc() -> None:
    tokyo = datetime(2025, 3, 1, 3, 0, tzinfo=timezone(timedelta(hours=9)))  # Feb 28 18:00 UTC
    assert window_start("month", tokyo) == utc(2025, 2, 1)
    assert window_end("day", tokyo) == utc(2025, 3, 1)
    with pytest.raises(ValueError, match="unknown quota window 'year'"):
        window_start("year", NOW)


# --- rules ------------------------------------------------------------------------------------------


def rule(scope: str, target: int, limit: int | None, *, blocked: bool = False, window: str = "day") -> Rule:
    """A rule in guild G."""
    return Rule(G, scope, target, limit, blocked, window)


RULES = [
    rule("guild", 0, 10_000),
    rule("default", 0, 300),
    rule("role", 1, None),
    rule("role", 2, 50_000, window="month"),
    rule("role", 3, 100),
    rule("role", 4, None, blocked=True),
    rule("user", 9, 0, blocked=True),
    rule("user", 8, None),
]


@pytest.mark.parametrize(
    ("user", "roles", "expected"),
    [
        (9, {1, 2}, rule("user", 9, 0, blocked=True)),  # a user block beats every role
        (8, {4}, rule("user", 8, None)),  # a user exemption beats a blocking role
        (5, {1, 2, 3, 4}, rule("role", 1, None)),  # unlimited beats any limit
        (5, {2, 3, 4}, rule("role", 2, 50_000, window="month")),  # larger beats smaller, as given
        (5, {3, 4}, rule("role", 3, 100)),  # a limit beats a block
        (5, {4}, rule("role", 4, None, blocked=True)),
        (5, {77}, rule("default", 0, 300)),
        (5, set(), rule("default", 0, 300)),
    ],
)
def test_effective_user_rule(user: int, roles: set[int], expected: Rule) -> None:
    assert effective_user_rule(RULES, user, roles) == expected


def test_no_rule_means_no_per_user_limit() -> None:
    assert effective_user_rule([rule("guild", 0, 5), rule("role", 3, 100)], 5, {4}) is None
    check = user_check(G, 5, None)
    assert (check.limit_cents, check.window, check.subject) == (None, "day", "user:5")


def test_rules_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="scope"):
        rule("channel", 1, 5)
    with pytest.raises(ValueError, match="negative"):
        rule("user", 1, -5)
    with pytest.raises(ValueError, match="target_id 0"):
        rule("default", 4, 5)


async def test_rules_crud(store: QuotaStore) -> None:
    assert await store.rules(G) == []
    await store.set_rule(rule("default", 0, 300))
    await store.set_rule(rule("user", 5, None, blocked=True))
    await store.set_rule(rule("default", 0, None, window="week"))  # replaces, does not duplicate
    await store.set_rule(Rule(G + 1, "guild", 0, 1, False, "month"))
    assert await store.rules(G) == [
        rule("default", 0, None, window="week"),
        rule("user", 5, None, blocked=True),
    ]
    assert await store.clear_rule(G, "user", 5) is True
    assert await store.clear_rule(G, "user", 5) is False
    assert await store.rules(G) == [rule("default", 0, None, window="week")]
    assert await store.rules(G + 1) == [Rule(G + 1, "guild", 0, 1, False, "month")]


# --- reserve, commit, refund ------------------------------------------------------------------------


async def test_reserve_commit_and_refund_move_the_counters(store: QuotaStore) -> None:
    pool = daily(1000, "guild", "the server's daily pool")
    first = await held(store, 250, daily(500), pool)
    second = await held(store, 100, daily(500), pool)
    assert first.cost_cents == 250
    assert await day_usage(store) == (0, 350)
    await store.commit(first.id)
    assert await day_usage(store) == (250, 100)
    await store.refund(second.id, outcome="refunded: SafetyBlocked")
    assert await day_usage(store) == (250, 0)
    assert await day_usage(store, "guild") == (250, 0)
    await store.commit(first.id)  # idempotent: nothing moves twice
    await store.refund(first.id, outcome="refunded: late")  # a committed job cannot be refunded
    await store.commit(second.id)  # nor a refunded one committed
    assert await day_usage(store) == (250, 0)
    rows = {r.id: (r.status, r.outcome) for r in await store.audit(G)}
    assert rows == {first.id: ("committed", "ok"), second.id: ("refunded", "refunded: SafetyBlocked")}


async def test_a_refusal_names_the_limit_and_charges_nothing(store: QuotaStore) -> None:
    await store.commit((await held(store, 300, daily(500))).id)
    await held(store, 100, daily(500))
    pool = daily(10_000, "guild", "the server's daily pool")
    refusal = await reserve(store, 200, pool, daily(500))
    assert refusal == Refusal("your daily limit", 500, 300, 100, TOMORROW)
    assert await day_usage(store, "guild") == (0, 0)  # the pool's charge was rolled back
    assert isinstance(await reserve(store, 100, pool, daily(500)), Reservation)  # exactly full is fine


async def test_the_first_refusing_check_in_lock_order_is_reported(store: QuotaStore) -> None:
    checks = (daily(0, "z-last", "the last"), Check(G, "a-first", "week", 50, "the first"))
    refusal = await reserve(store, 100, *checks)
    assert isinstance(refusal, Refusal)
    assert (refusal.label, refusal.resets_at) == ("the first", utc(2025, 3, 17))


async def test_zero_cost_passes_a_zero_limit_but_a_paid_job_does_not(store: QuotaStore) -> None:
    blocked = daily(0, label="a block on your account")
    free = await held(store, 0, blocked)  # a local upscale costs nothing, so even a block lets it through
    await store.commit(free.id)
    assert await reserve(store, 1, blocked) == Refusal("a block on your account", 0, 0, 0, TOMORROW)


async def test_unlimited_checks_still_count(store: QuotaStore) -> None:
    for _ in range(3):
        await store.commit((await held(store, 10_000, daily(None))).id)
    assert await day_usage(store) == (30_000, 0)


async def test_concurrency_units_are_released_on_commit(store: QuotaStore) -> None:
    def checks() -> tuple[Check, ...]:
        return (daily(10_000), concurrency_check(G, U, 2))

    a, b = await held(store, 100, *checks()), await held(store, 100, *checks())
    refusal = await reserve(store, 100, *checks())
    assert refusal == Refusal(CONCURRENT, 200, 0, 200, None)
    await store.commit(a.id)
    await store.refund(b.id, outcome="refunded: ProviderTimeout")
    active = await store.usage(G, f"active:{U}", None)
    assert active == Usage(0, 0, EPOCH, None)
    assert await day_usage(store) == (100, 0)
    assert isinstance(await reserve(store, 0, *checks()), Reservation)  # a free job still takes a slot
    assert (await store.usage(G, f"active:{U}", None)).reserved_cents == 100
    entry = (await store.audit(G, limit=1))[0].counters
    assert entry == [
        [G, f"active:{U}", EPOCH.isoformat(), 100, "units"],
        [G, f"user:{U}", "2025-03-12T00:00:00+00:00", 0, "credit"],
    ]


async def test_commit_after_midnight_settles_the_window_it_reserved_in(store: QuotaStore) -> None:
    late = await held(store, 100, daily(500), now=utc(2025, 3, 12, 23, 59, 59))
    await store.commit(late.id)
    assert await day_usage(store) == (100, 0)
    tomorrow = await store.usage(G, f"user:{U}", "day", TOMORROW)
    assert (tomorrow.used_cents, tomorrow.window_start, tomorrow.resets_at) == (0, TOMORROW, utc(2025, 3, 14))


async def test_two_checks_on_one_counter_are_refused(store: QuotaStore) -> None:
    with pytest.raises(ValueError, match="same counter"):
        await reserve(store, 100, daily(5), daily(10))


async def test_reset_zeroes_the_current_windows_only(store: QuotaStore) -> None:
    last_week = utc(2025, 3, 3, 12)
    for now in (NOW, last_week):
        checks = (daily(None), daily(None, "guild"), Check(G, f"user:{U}", "month", None, "m"))
        await store.commit((await held(store, 100, *checks, now=now)).id)
    other = await store.reserve(
        guild_id=G + 1,
        user_id=U,
        cost_cents=100,
        checks=[Check(G + 1, "guild", "day", None, "x")],
        kind="edit",
        prompt="",
        now=NOW,
    )
    assert isinstance(other, Reservation)
    await store.commit(other.id)
    pending = await held(store, 50, daily(None))
    assert await store.reset(G, f"user:{U}", now=NOW) == 2  # today's and this month's (it holds both days)
    assert await day_usage(store) == (0, 50)  # reserved credits are untouched
    assert (await store.usage(G, f"user:{U}", "month", NOW)).used_cents == 0
    assert (await store.usage(G, f"user:{U}", "day", last_week)).used_cents == 100
    assert await store.reset(G, now=NOW) == 1  # the guild pool
    assert (await store.usage(G + 1, "guild", "day", NOW)).used_cents == 100
    assert await store.reset(G, now=NOW) == 0
    await store.commit(pending.id)
    assert await day_usage(store) == (50, 0)


# --- audit, cooldown, recovery ----------------------------------------------------------------------


async def test_audit_filters_by_user_and_literal_text(store: QuotaStore) -> None:
    prompts = [
        (U, "100% Cat"),
        (U, "1000 cats"),
        (U + 1, "snake_case CAT"),
        (U, "snakeXcase dog"),
        (U, r"a\b"),
    ]
    for user, prompt in prompts:
        assert isinstance(
            await reserve(store, 100, daily(None, f"user:{user}"), user=user, prompt=prompt), Reservation
        )
    assert [r.prompt for r in await store.audit(G)] == [p for _, p in reversed(prompts)]
    assert [r.prompt for r in await store.audit(G, text="0% c")] == ["100% Cat"]
    assert [r.prompt for r in await store.audit(G, text="E_C")] == ["snake_case CAT"]
    assert [r.prompt for r in await store.audit(G, text="cat")] == ["snake_case CAT", "1000 cats", "100% Cat"]
    assert [r.prompt for r in await store.audit(G, text="cat", user_id=U)] == ["1000 cats", "100% Cat"]
    assert [r.prompt for r in await store.audit(G, text="\\")] == [r"a\b"]
    assert [r.prompt for r in await store.audit(G, limit=2)] == [r"a\b", "snakeXcase dog"]
    assert await store.audit(G + 1) == []
    row = (await store.audit(G, user_id=U + 1))[0]
    assert (row.user_id, row.cost_cents, row.status, row.kind, row.created_at, row.finished_at) == (
        U + 1,
        100,
        "reserved",
        "imagine",
        NOW,
        None,
    )


async def test_recover_refunds_only_stale_reservations(store: QuotaStore) -> None:
    stale = await held(store, 100, daily(500), now=NOW - timedelta(hours=2))
    done = await held(store, 100, daily(500), now=NOW - timedelta(hours=2))
    await store.commit(done.id)
    fresh = await held(store, 100, daily(500), now=NOW - timedelta(minutes=5))
    assert await store.recover(older_than=timedelta(hours=1), now=NOW) == 1
    assert await store.recover(older_than=timedelta(hours=1), now=NOW) == 0
    status = {r.id: r.status for r in await store.audit(G)}
    assert status == {stale.id: "refunded", done.id: "committed", fresh.id: "reserved"}
    assert (await store.audit(G, limit=3))[2].outcome == "refunded: never finished (recovered at start-up)"
    assert await day_usage(store) == (100, 100)


async def test_the_quota_migration_downgrades_cleanly(db_url: str) -> None:
    await upgrade(db_url, "0002")
    db = await Database.open(db_url, migrate=False)
    try:
        async with db.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0001"))
        async with db.connect() as conn:
            names = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
    finally:
        await db.close()
    assert "turns" in names and not {"quota_rules", "quota_counters", "quota_reservations"} & names


async def test_lock_contention_retries_the_whole_transaction(store: QuotaStore) -> None:
    calls: list[int] = []

    async def flaky(conn: AsyncConnection) -> str:
        calls.append(1)
        if len(calls) < 3:
            raise sa.exc.OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))
        return "done"

    assert await store._write(flaky) == "done" and len(calls) == 3

    async def broken(conn: AsyncConnection) -> str:
        calls.append(1)
        raise sa.exc.OperationalError("INSERT", {}, sqlite3.OperationalError("disk I/O error"))

    calls.clear()
    with pytest.raises(sa.exc.OperationalError, match="disk I/O"):
        await store._write(broken)
    assert len(calls) == 1


# --- exactness under load ---------------------------------------------------------------------------


async def counter_row(db: Database, subject: str, guild_id: int = G) -> tuple[int, int]:
    """(used, reserved) straight from the table, summed over windows."""
    t = quota_counters
    query = sa.select(sa.func.sum(t.c.used_cents), sa.func.sum(t.c.reserved_cents)).where(
        t.c.guild_id == guild_id, t.c.subject == subject
    )
    async with db.connect() as conn:
        used, reserved = (await conn.execute(query)).one()
    return int(used), int(reserved)


async def test_200_concurrent_reservations_against_50_credits(
    store: QuotaStore, db: Database, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    check = Check(G, "load", "day", 5000, "the load limit")
    began = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="bot.billing.store"):
        outcomes = await asyncio.gather(*(reserve(store, 100, check) for _ in range(200)))
        won = [o for o in outcomes if isinstance(o, Reservation)]
        await asyncio.gather(*(store.commit(r.id) for r in won))
    seconds = time.perf_counter() - began
    retries = sum("lock contention" in r.message for r in caplog.records)
    assert len(won) == 50
    assert all(isinstance(o, Refusal) and o.limit_cents == 5000 for o in outcomes if o not in won)
    assert await counter_row(db, "load") == (5000, 0)
    async with db.connect() as conn:
        count = (await conn.execute(sa.select(sa.func.count()).select_from(quota_reservations))).scalar_one()
    assert count == 50
    with capsys.disabled():
        print(
            f"\n  [{db.dialect}] 200 concurrent reserves + 50 commits: {seconds:.2f} s, {retries} retries",
            end="",
        )


async def start_worker(url: str) -> asyncio.subprocess.Process:
    """Launch tests/quota_worker.py (100 one-credit reservations against 50 credits) and wait until ready."""
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "tests/quota_worker.py",
        url,
        "100",
        "5000",
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert worker.stdout is not None
    line = await asyncio.wait_for(worker.stdout.readline(), 30)
    if line.strip() != b"ready":
        _, err = await worker.communicate()
        pytest.fail(f"worker did not start: {line!r} {err.decode(errors='replace')}")
    return worker


async def test_two_processes_share_one_limit_exactly(
    db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    workers = await asyncio.gather(start_worker(db.url), start_worker(db.url))
    outputs = await asyncio.wait_for(asyncio.gather(*(w.communicate(b"go\n") for w in workers)), 60)
    for worker, (_, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err.decode(errors="replace")
    results = [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outputs]
    assert sum(r["ok"] for r in results) == 50, results
    assert all(r["ok"] + r["refused"] == 100 for r in results)
    assert await counter_row(db, "shared", 4242) == (5000, 0)
    with capsys.disabled():
        print(f"\n  [{db.dialect}] 2 processes x 100 reserves + commits: {results}", end="")


async def test_cooldown_is_checked_and_started_atomically(store: QuotaStore) -> None:
    """Twenty reservations at once with a cooldown: exactly one passes, on SQLite and PostgreSQL."""
    pace = Cooldown(G, U, 60)

    async def one(now: datetime) -> Reservation | Refusal:
        return await store.reserve(
            guild_id=G, user_id=U, cost_cents=1, checks=[], kind="imagine", prompt="p", now=now, cooldown=pace
        )

    outcomes = await asyncio.gather(*(one(NOW) for _ in range(20)))
    passed = [o for o in outcomes if isinstance(o, Reservation)]
    cooling = [o for o in outcomes if isinstance(o, Refusal)]
    assert len(passed) == 1 and len(cooling) == 19
    assert {o.ready_at for o in cooling} == {NOW + timedelta(seconds=60)}
    await store.refund(passed[0].id, outcome="refunded: failed")  # a failed job still set the pace
    assert isinstance(await one(NOW + timedelta(seconds=59)), Refusal)
    assert isinstance(await one(NOW + timedelta(seconds=60)), Reservation)


async def test_a_refused_reservation_does_not_start_the_cooldown(store: QuotaStore) -> None:
    pace = Cooldown(G, U, 60)
    full = Check(G, "user:7", "day", 0, "your daily limit")
    refused = await store.reserve(
        guild_id=G, user_id=U, cost_cents=1, checks=[full], kind="imagine", prompt="p", now=NOW, cooldown=pace
    )
    assert isinstance(refused, Refusal) and refused.label == "your daily limit"
    again = await store.reserve(
        guild_id=G, user_id=U, cost_cents=1, checks=[], kind="imagine", prompt="p", now=NOW, cooldown=pace
    )
    assert isinstance(again, Reservation)  # the refusal rolled the cooldown back with it


async def test_the_live_processes_are_counted_for_sharing_rates(db: Database, store: QuotaStore) -> None:
    first = Recovery(db, store, "host-a:0", stale_after=90)
    second = Recovery(db, store, "host-b:1", stale_after=90)
    assert await first.live_processes() == 1  # never less than this one
    await first.heartbeat()
    await second.heartbeat()
    assert await first.live_processes() == 2
    await second.retire()
    assert await first.live_processes() == 1
