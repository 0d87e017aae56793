"""Progress for a refine started by a reply, through the fake Discord: a progress reply with the queue
position and ❌ Cancel (the requester's, nobody else's; nothing charged), a bar of the provider's
typical duration once one is learned (slash commands too), the result or the error in its place, and
the server's language."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import NanoBot
from bot.ui.progress import BAR_CAP, BAR_CELLS, bar
from tests.botenv import (
    HANG,
    cancel_id,
    embed_fields,
    eventually,
    running_bot,
    settled_usage,
    wait_for_text,
    wait_result,
)
from tests.fakes.discord import FakeDiscord
from tests.fakes.providers import FakeGemini

KEY = "refine-progress-key"
PRO = "gemini-3-pro-image-preview"
EPHEMERAL = 64
#: The bar line of a progress message: ten cells and a percentage.
BAR_LINE = re.compile(r"^([▰▱]{10}) ~(\d+)%$", re.MULTILINE)


class Env:
    """The real bot (one job at a time, quick progress reports) on a fake Discord and a fake Gemini."""

    def __init__(self, discord: FakeDiscord, gemini: FakeGemini, bot: NanoBot) -> None:
        self.discord = discord
        self.gemini = gemini
        self.bot = bot

    async def imagine(self, prompt: str, user: str = "alice") -> dict[str, Any]:
        """A finished /imagine result."""
        inter = await self.discord.send_slash("imagine", {"prompt": prompt}, user=user)
        return await wait_result(inter)

    async def progress_of(self, sent: dict[str, Any], needle: str) -> dict[str, Any]:
        """The bot's progress reply to a member's message, once it shows the needle."""
        return await self.discord.wait_for_message(
            lambda m: self.replies_to(m, sent) and needle in (m.get("content") or ""), timeout=HANG
        )

    async def result_of(self, sent: dict[str, Any]) -> dict[str, Any]:
        """The bot's reply with an embed (the result or an error) to a member's message."""
        return await self.discord.wait_for_message(
            lambda m: self.replies_to(m, sent) and bool(m.get("embeds")), timeout=HANG
        )

    def replies_to(self, message: dict[str, Any], sent: dict[str, Any]) -> bool:
        """Whether a message is the bot's reply to `sent`."""
        reference = message.get("message_reference") or {}
        return reference.get("message_id") == sent["id"] and message["author"]["id"] == self.discord.app_id

    def gone(self, message: dict[str, Any]) -> bool:
        """Whether a message has been deleted."""
        return message["id"] not in self.discord._by_id


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as gemini:
        fake.add_user("bob")
        entry = {"name": "google", "kind": "gemini", "base_url": gemini.base_url, "api_key": KEY}
        async with running_bot(
            fake, tmp_path, entry, max_running_jobs=1, progress_interval=0.3, live_preview=True
        ) as bot:
            yield Env(fake, gemini, bot)
        assert fake.violations == []


def bar_of(content: str) -> tuple[str, int] | None:
    """The bar a progress text shows (cells, percent), if any."""
    found = BAR_LINE.search(content)
    return (found[1], int(found[2])) if found else None


def test_the_bar_fills_with_elapsed_time_and_never_claims_the_end() -> None:
    assert bar(5.0, 10.0) == ("▰▰▰▰▰▱▱▱▱▱", 50)
    assert bar(0.0, 10.0) == ("▱" * BAR_CELLS, 0)
    assert bar(99.0, 10.0) == ("▰" * 9 + "▱", BAR_CAP)  # long past the typical time: still not done
    assert bar(3.0, None) is None  # nothing learned yet: no bar


async def test_a_reply_refine_shows_its_place_and_only_its_requester_cancels_it(env: Env) -> None:
    made = await env.imagine("a cat")
    before = await settled_usage(env.discord, env.bot, "alice")
    held = env.gemini.hold_next()  # bob's job holds the one slot until released
    blocker = await env.discord.send_slash("imagine", {"prompt": "a dog"}, user="bob")
    await wait_for_text(blocker, "Working with")

    sent = await env.discord.user_message("make it purple", reply_to=made)
    progress = await env.progress_of(sent, "Queued: position 1")
    assert progress["content"].startswith("⏳ Queued: position 1")
    [created] = [
        r
        for r in env.discord.requests
        if r.method == "POST" and str((r.json or {}).get("content")).startswith("⏳ Queued")
    ]
    assert created.json["allowed_mentions"]["replied_user"] is False  # a reply that does not ping

    stranger = await env.discord.send_component(progress, cancel_id(progress), user="bob")
    refusal = await stranger.wait_done()
    assert "Not yours" in refusal["embeds"][0]["title"] and int(refusal.get("flags") or 0) & EPHEMERAL
    assert "Queued" in env.discord._current(progress)["content"]  # still waiting

    click = await env.discord.send_component(progress, cancel_id(progress), user="alice")
    await click.wait_ack()
    cancelled = env.discord._current(progress)
    assert "Cancelled" in cancelled["content"] and not cancelled.get("components")

    held.set()
    assert env.discord.files_of(await wait_result(blocker))
    assert await env.bot.service.wait_idle(HANG)
    assert env.gemini.calls == 2  # the cat and bob's dog: the refine never reached the provider
    assert await settled_usage(env.discord, env.bot, "alice") == before  # nothing charged
    assert not [
        m for m in env.discord.messages[sent["channel_id"]] if env.replies_to(m, sent) and m.get("embeds")
    ]
    assert "Cancelled" in env.discord._current(progress)["content"]  # no progress edit came after


async def test_the_bar_appears_once_a_duration_is_learned_and_the_result_takes_its_place(env: Env) -> None:
    held = env.gemini.hold_next()
    first = await env.discord.send_slash("imagine", {"prompt": "a cat"})
    shown = await wait_for_text(first, "Working with google")
    assert bar_of(shown["content"]) is None  # nothing learned about this provider yet
    held.set()
    made = await wait_result(first)
    queue = env.bot.service.supervisor.queue
    assert queue.typical("google") is not None  # learned from that job

    held = env.gemini.hold_next()
    sent = await env.discord.user_message("make it purple", reply_to=made)
    progress = await env.progress_of(sent, "Working with google")
    await eventually(lambda: bar_of(env.discord._current(progress)["content"]) is not None, what="a bar")
    cells, percent = bar_of(env.discord._current(progress)["content"]) or ("", 0)
    assert percent <= BAR_CAP < 100  # never the end before the result
    assert cells == "▰" * (percent * BAR_CELLS // 100) + "▱" * (BAR_CELLS - percent * BAR_CELLS // 100)
    assert cancel_id(env.discord._current(progress))
    held.set()
    result = await env.result_of(sent)
    assert env.discord.files_of(result) and result["embeds"][0]["title"] == "🔁 Refine"
    await eventually(lambda: env.gone(progress), what="the progress reply removed")

    held = env.gemini.hold_next()  # a slash command shows the bar too
    second = await env.discord.send_slash("imagine", {"prompt": "a bird"})
    await eventually(lambda: bar_of((second.original or {}).get("content") or "") is not None, what="a bar")
    held.set()
    assert env.discord.files_of(await wait_result(second))


async def test_an_error_takes_the_place_of_the_progress_reply(env: Env) -> None:
    made = await env.imagine("a cat")
    before = await settled_usage(env.discord, env.bot, "alice")
    held = env.gemini.hold_next()
    env.gemini.script("prompt_blocked")
    sent = await env.discord.user_message("make it scary", reply_to=made)
    progress = await env.progress_of(sent, "Working with google")
    held.set()
    await eventually(lambda: bool(env.discord._current(progress).get("embeds")), what="the error shown")
    told = env.discord._current(progress)
    assert "Blocked" in told["embeds"][0]["title"] and not told.get("content")
    assert not told.get("components")  # no Cancel left on it
    assert await settled_usage(env.discord, env.bot, "alice") == before  # refunded


async def test_a_spanish_server_gets_the_progress_and_the_result_in_spanish(env: Env) -> None:
    made = await env.imagine("a cat")
    env.discord.set_preferred_locale("es-ES")
    guild_id = int(env.discord.guild_id)

    def spanish() -> bool:
        guild = env.bot.get_guild(guild_id)
        return guild is not None and guild.preferred_locale.value == "es-ES"

    await eventually(spanish, what="the server's new language seen by the bot")
    held = env.gemini.hold_next()
    sent = await env.discord.user_message("make it purple", reply_to=made)
    progress = await env.progress_of(sent, "Trabajando con google")
    progress = await env.progress_of(sent, "se cobra")  # once the provider has the request
    [button] = [c for row in progress["components"] for c in row["components"]]
    assert button["label"] == "Cancelar (se cobra igual)"  # the request is with the provider
    held.set()
    result = await env.result_of(sent)
    assert result["embeds"][0]["title"] == "🔁 Refinar"
    assert {"Modelo", "Resolución", "Tiempo"} <= set(embed_fields(result))
    labels = {c["label"] for row in result["components"] for c in row["components"]}
    assert {"Repetir", "Editar", "Eliminar"} <= labels


async def test_a_thinking_model_shows_its_interim_image_in_the_progress_reply(env: Env) -> None:
    inter = await env.discord.send_slash("imagine", {"prompt": "a lighthouse", "model": PRO})
    made = await wait_result(inter)
    final = env.gemini.stream.hold("image")  # the refine's final image waits until the test says so
    sent = await env.discord.user_message("make it stormy", reply_to=made)
    progress = await env.discord.wait_for_message(
        lambda m: env.replies_to(m, sent) and bool(m.get("attachments")), timeout=HANG
    )
    [(name, _)] = env.discord.files_of(progress)
    assert name.startswith("preview.") and "💭" in progress["content"] and cancel_id(progress)
    final.set()
    result = await env.result_of(sent)
    [(name, data)] = env.discord.files_of(result)
    assert not name.startswith("preview") and data == env.gemini.outputs[-1]
    await eventually(lambda: env.gone(progress), what="the progress reply removed")


async def test_a_deleted_progress_reply_is_left_alone(env: Env) -> None:
    made = await env.imagine("a cat")
    held = env.gemini.hold_next()  # bob's job holds the one slot: the refine waits, reporting
    blocker = await env.discord.send_slash("imagine", {"prompt": "a dog"}, user="bob")
    await wait_for_text(blocker, "Working with")
    sent = await env.discord.user_message("make it purple", reply_to=made)
    progress = await env.progress_of(sent, "Queued: position 1")
    await env.discord._delete(env.discord._current(progress))  # a moderator removes it
    path = f"/channels/{progress['channel_id']}/messages/{progress['id']}"

    def missed() -> list[Any]:
        """Edits of the reply that found it gone."""
        return [
            r
            for r in env.discord.requests
            if r.method == "PATCH" and r.path.endswith(path) and r.status == 404
        ]

    await eventually(lambda: len(missed()) >= 1, what="the next progress report")
    await asyncio.sleep(1.0)  # three more report intervals
    assert len(missed()) == 1  # it found the reply gone and stopped, rather than failing at every report
    held.set()
    assert env.discord.files_of(await env.result_of(sent))  # the result still arrives, as a reply
