"""The edges of /help, the /usage charts, /usage server, /audit export and the progress of a refine by
reply, through the fake Discord: running jobs, a limit of 0, a server pool, member preferences, prompts
with line breaks, large amounts, fonts off the event loop and previews' running time."""

from __future__ import annotations

import csv
import io
import re
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
from bot.imaging.pool import image_pool, image_workers
from bot.ui import usage as usage_ui
from tests.botenv import (
    HANG,
    GeminiWorld,
    eventually,
    gemini_world,
    running_bot,
    settled_usage,
    wait_for_text,
    wait_result,
)
from tests.fakes.discord import FakeDiscord
from tests.fakes.imagegen import make_image
from tests.fakes.providers import FakeGemini

KEY = "edges-key"
PRO = "gemini-3-pro-image-preview"


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


async def spend(bot: NanoBot, world: World, user: str, cents: int) -> None:
    """A delivered job of `cents` on record now, on the member's counter."""
    guild, user_id = int(world.discord.guild_id), world.user_id(user)
    checks = [Check(guild, user_subject(user_id), "day", None, "your limit")]
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


async def test_usage_server_does_not_count_running_jobs_as_spent(world: World) -> None:
    """The 30-day figure is labelled "Spent" beside a separate "Running now": credits held by jobs
    still running (which may yet be refunded) are not in it."""
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
    assert found["Spent today"] == found["Running now"]  # one job delivered, one running: 1 credit each
    history = found["Spent in the last 30 days"]
    assert history == found["Spent today"], found  # 2 credits: the running job counted as spent


async def test_a_limit_of_zero_draws_no_spent_cells_when_nothing_was_spent(world: World) -> None:
    """`/quota set limit:0` (not "blocked") gives a limit of 0 credits: the one-line bar (read by
    screen readers, and the chart's alt text) says nothing may be spent, not ten cells of ▓ spent."""
    async with world.bot():
        done = await world.command("quota set", {"scope": "default", "limit": "0"})
        assert "✅" in done["content"]
        message = await world.usage()
    bar = message["embeds"][0]["description"]
    assert "0" in bar and "⛔" in bar, bar  # nothing used, and nothing may be: as blocked
    assert "▓" not in bar, bar  # ▓ means spent, and nothing was


async def test_the_chart_checks_its_fonts_off_the_event_loop(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fonts are loaded and probed only in the image pool, never on the event loop
    (bot/imaging/fonts.py), including the check of which language a chart can be drawn in."""
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
    monkeypatch.setattr(ImageFont.FreeTypeFont, "getmask", spy("getmask", ImageFont.FreeTypeFont.getmask))
    for cached in (usage_ui.chart_language, fonts.font_at, fonts._has_glyph):
        cached.cache_clear()  # as in a process that has drawn no chart yet
    async with world.bot():
        message = await world.usage(locale="es-ES")
    assert world.discord.files_of(message)
    assert on_loop == [], f"Pillow font work on the event loop: {sorted(set(on_loop))}"


# --- a refine by reply: its progress ------------------------------------------------------------


class Env:
    """The real bot (one job at a time, quick progress reports, live previews) on the fakes."""

    def __init__(self, discord: FakeDiscord, gemini: FakeGemini, bot: NanoBot) -> None:
        self.discord = discord
        self.gemini = gemini
        self.bot = bot

    def replies_to(self, message: dict[str, Any], sent: dict[str, Any]) -> bool:
        reference = message.get("message_reference") or {}
        return reference.get("message_id") == sent["id"] and message["author"]["id"] == self.discord.app_id


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as gemini:
        entry = {"name": "google", "kind": "gemini", "base_url": gemini.base_url, "api_key": KEY}
        async with running_bot(
            fake, tmp_path, entry, max_running_jobs=1, progress_interval=0.3, live_preview=True
        ) as bot:
            yield Env(fake, gemini, bot)
        assert fake.violations == []


SECONDS = re.compile(r"… (\d+) s")


def seconds_of(message: dict[str, Any]) -> int | None:
    """The running time a progress message shows, if any."""
    found = SECONDS.search(message.get("content") or "")
    return int(found[1]) if found else None


async def test_a_preview_never_turns_the_running_time_back(env: Env) -> None:
    """A job's running time counts from its slot in every report, a preview's included: while the
    image pool is busy preparing inputs, the progress never goes "… 2 s", then "… 0 s" with the
    preview."""
    inter = await env.discord.send_slash("imagine", {"prompt": "a lighthouse", "model": PRO})
    made = await wait_result(inter)
    busy, blockers = threading.Event(), []
    pool = image_pool()
    try:
        blockers = [pool.submit(busy.wait, HANG) for _ in range(image_workers())]  # other jobs' work
        final = env.gemini.stream.hold("image")  # the refine's final image waits for the test
        photo = make_image(64, 64, "PNG")
        sent = await env.discord.user_message(
            "add this lamp", reply_to=made, attachments=[("lamp.png", photo)]
        )
        progress = await env.discord.wait_for_message(
            lambda m: env.replies_to(m, sent) and (seconds_of(m) or 0) >= 2, timeout=HANG
        )
        before = seconds_of(env.discord._current(progress)) or 0
    finally:
        busy.set()
    for blocker in blockers:
        blocker.result(HANG)
    await eventually(lambda: bool(env.discord._current(progress).get("attachments")), what="a preview")
    final.set()
    await env.discord.wait_for_message(
        lambda m: env.replies_to(m, sent) and bool(m.get("embeds")), timeout=HANG
    )
    edits = [
        r.json["content"]
        for r in env.discord.requests
        if r.method == "PATCH" and r.path.endswith(f"/messages/{progress['id']}") and r.json
    ]
    shown = [n for n in (seconds_of({"content": c}) for c in edits) if n is not None]
    assert shown == sorted(shown), (before, edits)  # the running time never goes back


# --- /help -----------------------------------------------------------------------------------------


async def help_page(world: World, topic: str, user: str = "alice") -> dict[str, Any]:
    """A /help topic as the member sees it."""
    shown = await world.command("help", {}, user=user)
    [select] = [c for row in shown["components"] for c in row["components"] if c["type"] == 3]
    chose = await world.discord.send_component(shown, select["custom_id"], values=[topic], user=user)
    await chose.wait_done()
    return world.discord._current(shown)


async def test_help_left_is_what_admission_would_still_allow_under_a_server_pool(world: World) -> None:
    """The rules page's "Left" is what admission would still allow: with the server pool spent, it
    promises no credits that every job would be refused."""
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
    assert fields(page)["Left"].split()[0] == "0", fields(page)  # not "8 credits"


async def test_help_names_the_model_the_members_own_jobs_run_on(world: World) -> None:
    """The models page names the model a job without one runs on for this member: their `/prefs set
    model` beats the server's default and the first configured (as bot/ui/prefs.py applies it)."""
    async with world.bot():
        done = await world.command("prefs set", {"model": PRO}, user="alice")
        assert PRO in str(done), done
        made = await wait_result(await world.discord.send_slash("imagine", {"prompt": "a pear"}))
        page = await help_page(world, "models")
    model = next(f["value"] for f in made["embeds"][0]["fields"] if f["name"] == "Model")
    assert PRO in model, model  # her jobs without a model run on her preference
    description = page["embeds"][0]["description"]
    assert f"**{PRO}**" in description, description  # not the first configured model


# --- /audit ------------------------------------------------------------------------------------------


async def test_a_prompt_cannot_forge_lines_in_the_audit_list(world: World) -> None:
    """A refine's prompt is the reply's text, which may hold line breaks: /audit shows it on its
    job's one line, so no member can add lines that read as other members' jobs."""
    bob = world.user_id("bob")
    forged = f"<@{bob}> imagine · 0 cr · ok · “cat"  # the list adds the closing quote
    async with world.bot() as bot:
        made = await wait_result(await world.discord.send_slash("imagine", {"prompt": "a pear"}))
        sent = await world.discord.user_message(f"x”\n{forged}", reply_to=made)
        await world.discord.wait_for_message(
            lambda m: (
                (m.get("message_reference") or {}).get("message_id") == sent["id"] and bool(m.get("embeds"))
            ),
            timeout=HANG,
        )
        await settled_usage(world.discord, bot)
        listed = await world.command("audit", {}, force=True)
    lines = listed["embeds"][0]["description"].split("\n")
    assert len(lines) == 2, lines  # two jobs, two lines: not a third one that names bob
    assert not any(line.startswith(f"<@{bob}>") for line in lines), lines


async def test_the_export_keeps_every_cent_of_a_large_charge(world: World) -> None:
    """The CSV writes credits exactly: a job charged 12,345.67 credits is 12345.67 (not 12345.7),
    one of a million 1000000 (not 1e+06)."""
    async with world.bot() as bot:
        await spend(bot, world, "alice", 1_234_567)  # 12,345.67 credits
        await spend(bot, world, "bob", 100_000_000)  # 1,000,000 credits
        inter = await world.discord.send_slash("audit", {"export": True}, user="admin", force=True)
        message = await inter.wait_done()
    [(_, data)] = world.discord.files_of(message)
    [header, *rows] = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    charged = {row[header.index("member_id")]: row[header.index("charged_credits")] for row in rows}
    assert charged[str(world.user_id("alice"))] == "12345.67", charged  # not "12345.7"
    assert charged[str(world.user_id("bob"))] == "1000000", charged  # not "1e+06"
