"""Review of /help, the /usage charts, /usage server, /audit export and the progress of a refine by
reply, through the fake Discord: each test shows one defect a member or an admin would meet."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import ImageFont

from bot.app import NanoBot
from bot.billing.rules import Check, Reservation, user_subject
from bot.imaging import fonts
from bot.ui import usage as usage_ui
from tests.botenv import (
    HANG,
    GeminiWorld,
    cancel_id,
    eventually,
    gemini_world,
    running_bot,
    settled_usage,
    wait_for_text,
    wait_result,
)
from tests.fakes.discord import FakeDiscord
from tests.fakes.providers import FakeGemini

KEY = "review-features-key"


class World(GeminiWorld):
    """The fakes, with the helpers these tests use."""

    def user_id(self, name: str) -> int:
        return int(self.discord.users[name]["id"])

    async def command(self, name: str, options: dict[str, Any], user: str = "admin", **kw: Any) -> Any:
        """A slash command's first answer."""
        return await (await self.discord.send_slash(name, options, user=user, **kw)).wait_done()

    async def usage(self, member: str = "alice", locale: str = "en-US", **options: Any) -> dict[str, Any]:
        """/usage's private answer to a member."""
        return await (await self.discord.send_slash("usage", options, user=member, locale=locale)).wait_done()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with gemini_world(World, tmp_path, KEY, ("bob",)) as world:
        yield world


def fields(message: dict[str, Any]) -> dict[str, str]:
    """name → value of the first embed's fields."""
    return {f["name"]: f["value"] for f in message["embeds"][0].get("fields", [])}


async def spend(bot: NanoBot, world: World, user: str, cents: int, *, pool: bool = False) -> None:
    """A delivered job of `cents` on record now, counted as admission counts one (the member's
    counter, and the server's when `pool`)."""
    guild, user_id = int(world.discord.guild_id), world.user_id(user)
    checks = [Check(guild, user_subject(user_id), "day", None, "your limit")]
    if pool:
        checks.append(Check(guild, "guild", "day", None, "server"))
    held = await bot.quotas.reserve(
        guild_id=guild,
        user_id=user_id,
        cost_cents=cents,
        checks=checks,
        kind="imagine",
        prompt="on record",
        now=datetime.now(UTC),
        channel_id=int(world.discord.channel_id),
    )
    assert isinstance(held, Reservation)
    await bot.quotas.commit(held.id)


# --- /usage and /usage server ----------------------------------------------------------------------


async def test_large_limits_and_totals_are_written_as_plain_numbers(world: World) -> None:
    """`/quota set limit:1000000` is allowed (parse_limit takes up to a million credits); /usage then
    writes it in scientific notation and rounds a member's spend to six significant digits."""
    async with world.bot() as bot:
        done = await world.command("quota set", {"scope": "default", "limit": "1000000"})
        assert "✅" in done["content"]
        await spend(bot, world, "alice", 1_234_567)  # 12345.67 credits
        message = await world.usage()
    found = fields(message)
    assert found["Limit"] == "1000000 per day", found["Limit"]  # not "1e+06 per day"
    assert found["Used"] == "12345.67 credits", found["Used"]  # not "12345.7 credits"
    assert "e+" not in message["embeds"][0]["description"]


async def test_usage_server_does_not_count_running_jobs_as_spent(world: World) -> None:
    """The 30-day figure is labelled "Spent" beside a separate "Running now", yet it adds the credits
    held by jobs still running (which may yet be refunded)."""
    async with world.bot(progress_interval=0.3) as bot:
        first = await wait_result(await world.discord.send_slash("imagine", {"prompt": "a pear"}))
        assert world.discord.files_of(first)
        assert await settled_usage(world.discord, bot) == (100, 0)
        held = world.gemini.hold_next()
        running = await world.discord.send_slash("imagine", {"prompt": "a plum"})
        await wait_for_text(running, "Working with")
        message = await world.usage("admin", server=True)
        held.set()
        assert world.discord.files_of(await wait_result(running))
    found = fields(message)
    assert (found["Spent today"], found["Running now"]) == ("1 credits", "1 credits")
    assert found["Spent in the last 30 days"] == "1 credits", found  # not 2: one job is still running


async def test_a_limit_of_zero_draws_no_spent_cells_when_nothing_was_spent(world: World) -> None:
    """`/quota set limit:0` (not "blocked") gives a limit of 0 credits; the one-line bar, which
    screen readers read and which is the chart's alt text, then claims ten cells of ▓ spent."""
    async with world.bot():
        done = await world.command("quota set", {"scope": "default", "limit": "0"})
        assert "✅" in done["content"]
        message = await world.usage()
    assert fields(message)["Used"] == "0 credits"
    bar = message["embeds"][0]["description"]
    assert "▓" not in bar, bar  # ▓ means spent, and nothing was


async def test_the_chart_checks_its_fonts_off_the_event_loop(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bot/imaging/fonts.py says fonts are read only in the image pool, never on the event loop;
    build_chart's chart_language() loads and renders them (font_face) on the loop."""
    loop_thread = threading.get_ident()
    on_loop: list[str] = []

    def spy(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() == loop_thread:
                on_loop.append(name)
            return original(*args, **kwargs)

        return call

    monkeypatch.setattr(ImageFont, "truetype", spy("truetype", ImageFont.truetype))
    monkeypatch.setattr(ImageFont, "load_default", spy("load_default", ImageFont.load_default))
    monkeypatch.setattr(
        ImageFont.FreeTypeFont, "getmask", spy("getmask", ImageFont.FreeTypeFont.getmask)
    )
    for cached in (usage_ui.chart_language, fonts.font_at, fonts._has_glyph):
        cached.cache_clear()  # as in a process that has drawn no chart yet
    async with world.bot():
        message = await world.usage(locale="es-ES")
    assert world.discord.files_of(message)
    assert on_loop == [], f"Pillow font work on the event loop: {sorted(set(on_loop))}"


# --- a refine by reply: its progress and ❌ Cancel --------------------------------------------------


class Env:
    """The real bot (one job at a time, quick progress reports) on a fake Discord and a fake Gemini."""

    def __init__(self, discord: FakeDiscord, gemini: FakeGemini, bot: NanoBot) -> None:
        self.discord = discord
        self.gemini = gemini
        self.bot = bot

    def replies_to(self, message: dict[str, Any], sent: dict[str, Any]) -> bool:
        reference = message.get("message_reference") or {}
        return reference.get("message_id") == sent["id"] and message["author"]["id"] == self.discord.app_id

    async def progress_of(self, sent: dict[str, Any], needle: str) -> dict[str, Any]:
        return await self.discord.wait_for_message(
            lambda m: self.replies_to(m, sent) and needle in (m.get("content") or ""), timeout=HANG
        )

    async def spanish_server(self) -> None:
        self.discord.set_preferred_locale("es-ES")
        guild_id = int(self.discord.guild_id)

        def spanish() -> bool:
            guild = self.bot.get_guild(guild_id)
            return guild is not None and guild.preferred_locale.value == "es-ES"

        await eventually(spanish, what="the server's new language seen by the bot")


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as gemini:
        fake.add_user("bob")
        entry = {"name": "google", "kind": "gemini", "base_url": gemini.base_url, "api_key": KEY}
        async with running_bot(fake, tmp_path, entry, max_running_jobs=1, progress_interval=0.3) as bot:
            yield Env(fake, gemini, bot)
        assert fake.violations == []


async def test_cancelling_a_reply_refine_keeps_the_servers_language(env: Env) -> None:
    """The progress reply is a public post in the server's language; ❌ Cancel rewrites it in the
    clicker's language, so a Spanish server's channel shows an English "Cancelled"."""
    made = await wait_result(await env.discord.send_slash("imagine", {"prompt": "a cat"}))
    await env.spanish_server()
    held = env.gemini.hold_next()  # bob's job holds the one slot
    blocker = await env.discord.send_slash("imagine", {"prompt": "a dog"}, user="bob")
    await wait_for_text(blocker, "Working with")
    sent = await env.discord.user_message("hazlo morado", reply_to=made)
    progress = await env.progress_of(sent, "En cola: posición 1")
    click = await env.discord.send_component(progress, cancel_id(progress), locale="en-US")
    await click.wait_ack()
    held.set()
    assert env.discord.files_of(await wait_result(blocker))
    shown = env.discord._current(progress)["content"]
    assert shown.startswith("❌ Cancelado"), shown  # not "❌ Cancelled. Nothing was charged."


# --- /help -----------------------------------------------------------------------------------------


async def help_page(world: World, topic: str, user: str = "alice") -> dict[str, Any]:
    """A /help topic as the member sees it."""
    shown = await world.command("help", {}, user=user)
    [select] = [c for row in shown["components"] for c in row["components"] if c["type"] == 3]
    chose = await world.discord.send_component(shown, select["custom_id"], values=[topic], user=user)
    await chose.wait_done()
    return world.discord._current(shown)


async def test_help_left_is_what_admission_would_still_allow_under_a_server_pool(world: World) -> None:
    """The rules page's "Left" is the member's own counter only: with the server pool spent, it
    still promises credits that every job is refused."""
    async with world.bot() as bot:
        await world.command("quota set", {"scope": "default", "limit": "10"})
        await world.command("quota set", {"scope": "guild", "limit": "2"})
        for prompt in ("a pear", "a plum"):
            made = await wait_result(await world.discord.send_slash("imagine", {"prompt": prompt}))
            assert world.discord.files_of(made)
        assert await settled_usage(world.discord, bot) == (200, 0)
        page = await help_page(world, "rules")
        refused = await wait_result(await world.discord.send_slash("imagine", {"prompt": "a fig"}))
    assert not world.discord.files_of(refused)  # the pool is spent: admission says no
    assert "Quota" in refused["embeds"][0]["title"], refused["embeds"][0]
    assert fields(page)["Left"] == "0 credits", fields(page)  # not "8 credits"
