"""/usage through the fake Discord: a chart whose bars, read back from the PNG's pixels, match the jobs
on record (spent, the reserved part on top, nothing for a day without jobs), a one-line bar for screen
readers, the member's language; /usage server for admins with the server's days and top members. And
the per-day queries themselves on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bot.app import NanoBot
from bot.billing.reports import HISTORY_DAYS, DaySpend, daily_spend, day_start, top_members
from bot.billing.rules import Check, Reservation, user_subject, window_start
from bot.billing.store import QuotaStore
from bot.imaging.chart import PLOT, RESERVED, SPENT, Chart, Day, Geometry, Panel, layout
from bot.storage.db import Database
from tests.botenv import GeminiWorld, attached_png, gemini_world, settled_usage, title, wait_result
from tests.pg import temp_database
from tests.unit.test_chart import LABELS, column, measured

KEY = "usage-chart-key"
EPHEMERAL = 64


class World(GeminiWorld):
    """The fakes, with the helpers these tests use."""

    def user_id(self, name: str) -> int:
        return int(self.discord.users[name]["id"])

    async def imagine(self, user: str = "alice") -> dict[str, Any]:
        result = await wait_result(await self.discord.send_slash("imagine", {"prompt": "a pear"}, user=user))
        assert self.discord.files_of(result)
        return result

    async def usage(self, member: str = "alice", locale: str = "en-US", **options: Any) -> dict[str, Any]:
        """/usage's private answer to a member."""
        return await (await self.discord.send_slash("usage", options, user=member, locale=locale)).wait_done()

    def chart(self, message: dict[str, Any]) -> Image.Image:
        name, image = attached_png(self.discord, message)
        assert name == "usage.png" and "usage.png" in message["embeds"][0]["image"]["url"]
        return image


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with gemini_world(World, tmp_path, KEY, ("bob",)) as world:
        yield world


def today() -> datetime:
    return datetime.now(UTC)


async def spend(
    bot: NanoBot, world: World, user: str, cents: int, when: datetime, status: str = "committed"
) -> Reservation:
    """A job on record at a past moment (as the bot's quota store writes one), settled as `status`."""
    guild, user_id = int(world.discord.guild_id), world.user_id(user)
    check = Check(guild, user_subject(user_id), "day", None, "your limit")
    held = await bot.quotas.reserve(
        guild_id=guild,
        user_id=user_id,
        cost_cents=cents,
        checks=[check],
        kind="imagine",
        prompt="on record",
        now=when,
        channel_id=int(world.discord.channel_id),
    )
    assert isinstance(held, Reservation)
    if status == "committed":
        await bot.quotas.commit(held.id)
    elif status == "refunded":
        await bot.quotas.refund(held.id, outcome="failed")
    return held


def history(values: dict[int, tuple[int, int]]) -> tuple[Day, ...]:
    """The last 30 days' bars from {days ago: (spent, reserved)}, oldest first."""
    now = today().date()
    first = now - timedelta(days=HISTORY_DAYS - 1)
    return tuple(
        Day(first + timedelta(days=n), *values.get(HISTORY_DAYS - 1 - n, (0, 0)), "")
        for n in range(HISTORY_DAYS)
    )


def check_bars(image: Image.Image, geometry: Geometry, bars: Sequence[Day]) -> None:
    """Each bar's spent and reserved heights are its day's credits on the plot's scale (±1 px)."""
    top = geometry.top_cents
    for index, day in enumerate(bars):
        spent, held = measured(image, geometry, index)
        assert abs(spent - day.spent / top * PLOT) <= 1, (day, spent)
        assert abs(held - day.reserved / top * PLOT) <= 1, (day, held)
        if not day.total:
            pixels = column(image, geometry, index)
            assert SPENT not in pixels and RESERVED not in pixels, day


async def test_usage_draws_the_members_days_from_their_jobs(world: World) -> None:
    async with world.bot() as bot:
        done = await world.discord.send_slash("quota set", {"scope": "default", "limit": "10"}, user="admin")
        assert "✅" in (await done.wait_done())["content"]
        await world.imagine()
        await world.imagine()
        assert await settled_usage(world.discord, bot) == (200, 0)
        midnight = day_start(today().date())
        await spend(bot, world, "alice", 250, midnight - timedelta(days=2, seconds=1))  # 3 days ago, 23:59:59
        await spend(bot, world, "alice", 400, midnight - timedelta(days=10))  # at midnight exactly
        await spend(bot, world, "alice", 300, midnight - timedelta(days=5), status="refunded")
        await spend(bot, world, "alice", 50, midnight - timedelta(days=29))
        await spend(bot, world, "alice", 700, midnight - timedelta(days=30))  # a day too old
        await spend(bot, world, "bob", 900, midnight - timedelta(days=3))  # someone else's
        await spend(bot, world, "alice", 100, today(), status="reserved")  # a job still running

        message = await world.usage()

    assert message["flags"] & EPHEMERAL
    embed = message["embeds"][0]
    assert embed["title"] == "Usage of Alice"
    assert embed["description"] == "▓▓▒░░░░░░░ 2/10 credits today"  # spent, running, left
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert (fields["Used"], fields["Reserved"], fields["Limit"]) == ("2 credits", "1 credit", "10 per day")
    bars = history({0: (200, 100), 3: (250, 0), 10: (400, 0), 29: (50, 0)})
    expected = Chart("", (Panel("", bars[-1:], limit=1000), Panel("", bars, limit=1000)), LABELS)
    now_panel, past_panel = layout(expected)
    assert now_panel.top_cents == past_panel.top_cents == 1000  # the daily limit sets the scale
    image = world.chart(message)
    check_bars(image, now_panel, bars[-1:])
    check_bars(image, past_panel, bars)


async def test_a_weekly_limit_shows_the_week_so_far_with_its_running_total(world: World) -> None:
    async with world.bot() as bot:
        options = {"scope": "default", "limit": "30", "window": "week"}
        await (await world.discord.send_slash("quota set", options, user="admin")).wait_done()
        now = today()
        monday = window_start("week", now)
        await spend(bot, world, "alice", 500, monday + timedelta(hours=1))
        await spend(bot, world, "alice", 300, max(now - timedelta(seconds=5), monday))  # today, this week
        await spend(bot, world, "alice", 800, monday - timedelta(hours=1))  # last week's Sunday
        message = await world.usage()
    assert message["embeds"][0]["description"].endswith(" credits this week")
    ago = (now.date() - monday.date()).days
    values: dict[int, tuple[int, int]] = {ago + 1: (800, 0)}
    values[ago] = (values.get(ago, (0, 0))[0] + 500, 0)
    values[0] = (values.get(0, (0, 0))[0] + 300, 0)
    bars = history(values)
    week = bars[-(ago + 1) :]
    expected = Chart("", (Panel("", week, limit=3000, running=True), Panel("", bars)), LABELS)
    week_panel, past_panel = layout(expected)
    assert len(week_panel.bars) == now.weekday() + 1  # Monday to today
    image = world.chart(message)
    check_bars(image, week_panel, week)
    check_bars(image, past_panel, bars)


async def test_a_member_reads_their_usage_in_their_language(world: World) -> None:
    async with world.bot() as bot:
        await world.imagine()
        assert await settled_usage(world.discord, bot) == (100, 0)  # charged just after it is posted
        spanish = await world.usage(locale="es-ES")
        japanese = await world.usage(locale="ja")
    embed = spanish["embeds"][0]
    assert embed["title"] == "Uso de Alice"
    assert {f["name"] for f in embed["fields"]} >= {"Usado", "Reservado", "Límite", "Se reinicia"}
    assert embed["description"] == "1 crédito usado hoy (sin límite)"
    assert japanese["embeds"][0]["title"] == "Aliceの使用量"
    assert japanese["embeds"][0]["description"] == "今日の使用：1クレジット（上限なし）"
    for message in (spanish, japanese):  # (in English where no font here has the language's letters)
        assert world.chart(message).size == (960, 92 + 2 * 274)


async def test_usage_server_shows_the_servers_days_and_top_members(world: World) -> None:
    async with world.bot() as bot:
        await world.imagine("alice")
        await world.imagine("alice")
        await world.imagine("bob")
        assert await settled_usage(world.discord, bot, "alice") == (200, 0)
        assert await settled_usage(world.discord, bot, "bob") == (100, 0)
        midnight = day_start(today().date())
        await spend(bot, world, "bob", 500, midnight - timedelta(days=5, hours=-3))
        refused = await world.usage("alice", server=True)
        both = await world.usage("admin", server=True, user="alice")
        message = await world.usage("admin", server=True)
    assert "Admins only" in title(refused)
    assert title(both) == "⚠️ Bad input"
    embed = message["embeds"][0]
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    alice, bob = world.user_id("alice"), world.user_id("bob")
    assert fields["Top members today"] == f"1. <@{alice}>: 2 credits\n2. <@{bob}>: 1 credit"
    assert fields["Top members, last 30 days"] == f"1. <@{bob}>: 6 credits\n2. <@{alice}>: 2 credits"
    assert fields["Spent today"] == "3 credits" and fields["Spent in the last 30 days"] == "8 credits"
    assert embed["description"] == "3 credits used today (no limit)"
    bars = history({0: (300, 0), 5: (500, 0)})
    expected = Chart("", (Panel("", bars[-1:]), Panel("", bars)), LABELS)
    now_panel, past_panel = layout(expected)
    image = world.chart(message)
    check_bars(image, now_panel, bars[-1:])
    check_bars(image, past_panel, bars)


# --- the queries, on both databases ----------------------------------------------------------------

G, ALICE, BOB = 5, 11, 12
DAY = datetime(2025, 3, 12, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[QuotaStore]:
    async with temp_database(request.param, tmp_path / "reports.db") as url:
        db = await Database.open(url)
        try:
            yield QuotaStore(db)
        finally:
            await db.close()


async def record(
    store: QuotaStore, user: int, cents: int, when: datetime, status: str, guild: int = G
) -> None:
    check = Check(guild, user_subject(user), "day", None, "x")
    held = await store.reserve(
        guild_id=guild, user_id=user, cost_cents=cents, checks=[check], kind="imagine", prompt="p", now=when
    )
    assert isinstance(held, Reservation)
    if status == "committed":
        await store.commit(held.id)
    elif status == "refunded":
        await store.refund(held.id, outcome="failed")


async def test_days_are_utc_days_and_only_spent_or_running_jobs_count(store: QuotaStore) -> None:
    await record(store, ALICE, 100, DAY - timedelta(microseconds=1), "committed")  # the day before
    await record(store, ALICE, 200, DAY, "committed")
    await record(store, ALICE, 300, DAY + timedelta(hours=23, minutes=59, seconds=59), "committed")
    await record(store, ALICE, 400, DAY + timedelta(hours=12), "refunded")
    await record(store, ALICE, 50, DAY + timedelta(days=2), "reserved")
    await record(store, BOB, 1000, DAY + timedelta(hours=1), "committed")
    await record(store, BOB, 70, DAY, "committed", guild=G + 1)  # another server
    first = DAY.date() - timedelta(days=1)
    mine = await daily_spend(store.db, G, first, first + timedelta(days=3), user_id=ALICE)
    assert mine == [
        DaySpend(first, 100, 0),
        DaySpend(first + timedelta(days=1), 500, 0),
        DaySpend(first + timedelta(days=2), 0, 0),
        DaySpend(first + timedelta(days=3), 0, 50),
    ]
    server = await daily_spend(store.db, G, first, first + timedelta(days=1))
    assert [(d.spent_cents, d.reserved_cents) for d in server] == [(100, 0), (1500, 0)]
    assert await top_members(store.db, G, DAY) == [(BOB, 1000), (ALICE, 500)]  # spent: not the running 50
    assert await top_members(store.db, G, DAY, limit=1) == [(BOB, 1000)]
    assert await top_members(store.db, G, DAY + timedelta(days=3)) == []
