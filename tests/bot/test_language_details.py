"""The details of the bot's languages, through the fake Discord: a member whose Discord speaks Spanish,
Brazilian Portuguese or Japanese reads no English, the right grammar (1 crédito) and their own numbers
(0,5), in every flow, and the server's language stays on the bot's own posts."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bot.i18n import t
from bot.imaging.fonts import NO_GLYPH, font_face
from bot.imaging.sheet import SheetCell, draw_sheet
from bot.jobs.ids import job_code
from bot.storage.blobs import blob_path
from tests.botenv import (
    HANG,
    GeminiWorld,
    button_id,
    cancel_id,
    embed_fields,
    eventually,
    gemini_world,
    linked_turn,
    running_bot,
    settled_usage,
    wait_for_text,
    wait_result,
)
from tests.fakes.discord import FakeDiscord
from tests.fakes.providers import FakeTask, Fault

KEY = "languages-key"


class World(GeminiWorld):
    """The fakes, with the helpers these tests use."""

    async def imagine(self, locale: str, user: str = "alice", prompt: str = "a pear") -> dict[str, Any]:
        inter = await self.discord.send_slash("imagine", {"prompt": prompt}, user=user, locale=locale)
        return await wait_result(inter)

    async def command(self, name: str, options: dict[str, Any], **kw: Any) -> dict[str, Any]:
        """A slash command's private answer (its first message)."""
        return await (await self.discord.send_slash(name, options, **kw)).wait_done()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with gemini_world(World, tmp_path, KEY, ("bob",)) as world:
        yield world


def labels(message: dict[str, Any]) -> list[str]:
    """The labels of a message's buttons, row by row."""
    return [
        str(c.get("label")) for row in message.get("components") or [] for c in row.get("components") or []
    ]


# --- /show posts a result again with English buttons ---------------------------------------------


async def test_show_labels_the_reposted_results_buttons_in_the_members_language(world: World) -> None:
    """/show answers in the member's language: its embed and the reposted result's buttons (🔁 ✏️
    🗑️)."""
    async with world.bot():
        made = await world.imagine("es-ES")
        assert "Repetir" in labels(made)  # the result itself is labelled in Spanish
        code = embed_fields(made)["Trabajo"].strip("`")
        shown = await wait_result(await world.discord.send_slash("show", {"id": code}, locale="es-ES"))
    assert "Trabajo" in embed_fields(shown)  # the embed is Spanish…
    assert labels(shown) == labels(made)  # …and so should its buttons be


@pytest.mark.parametrize("action", ["vsub", "vstr"])
async def test_a_variation_shows_the_members_prompt_not_the_models_instruction(
    world: World, action: str
) -> None:
    """A variation says its instruction to the model in English; the member reads only their own
    prompt, on the result, in /history's menu and in /audit."""
    async with world.bot():
        made = await world.imagine("es-ES", prompt="un barco al atardecer")
        click = await world.discord.send_component(made, button_id(made, action), locale="es-ES")
        varied = await wait_result(click)
        history = await world.command("history", {}, locale="es-ES")
        audit = await world.command("audit", {}, user="admin", locale="es-ES")
    assert varied["embeds"][0]["description"] == "un barco al atardecer"
    menu = [
        o
        for row in history.get("components") or []
        for c in row["components"]
        for o in c.get("options") or []
    ]
    assert [o["description"] for o in menu] == ["un barco al atardecer"] * 2
    assert "variation" not in audit["embeds"][0]["description"].lower()


# --- "1 créditos": amounts of credits never take the singular --------------------------------------


@pytest.mark.parametrize(("locale", "one"), [("es-ES", "1 crédito"), ("pt-BR", "1 crédito")])
async def test_usage_says_one_credit_in_the_singular(world: World, locale: str, one: str) -> None:
    """After one 1-credit image, /usage's "Used" field says "1 crédito": amounts take their plural
    by the language's rules."""
    async with world.bot() as bot:
        await world.imagine(locale)
        assert await settled_usage(world.discord, bot) == (100, 0)
        answer = await world.command("usage", {}, locale=locale)
    used = embed_fields(answer)
    [value] = [v for name, v in used.items() if name == "Usado"]
    assert value == one


async def test_a_quota_refusal_says_one_credit_in_the_singular(world: World) -> None:
    """The most common refusal says "Este trabajo cuesta 1 crédito…", in the singular."""
    async with world.bot():
        done = await world.command("quota set", {"scope": "default", "limit": "0.5"}, user="admin")
        assert "✅" in done["content"]
        refused = await world.imagine("es-ES")
    [embed] = refused["embeds"]
    assert embed["title"] == "📉 Cuota alcanzada"
    assert "1 créditos" not in embed["description"], embed["description"]


# --- numbers keep the English decimal point --------------------------------------------------------


@pytest.mark.parametrize(("locale", "half"), [("es-ES", "0,5"), ("pt-BR", "0,5")])
async def test_a_fractional_amount_uses_the_languages_decimal_comma(
    world: World, locale: str, half: str
) -> None:
    """Spanish (Spain) and Portuguese write 0,5: amounts of credits are written as the member's
    language writes numbers."""
    async with world.bot():
        await world.command("quota set", {"scope": "default", "limit": "0.5"}, user="admin")
        refused = await world.imagine(locale)
    [embed] = refused["embeds"]
    assert "0.5" not in embed["description"] and half in embed["description"], embed["description"]


# --- /audit shows the core's English codes ---------------------------------------------------------


async def test_audit_words_a_jobs_outcome_in_the_admins_language(world: World) -> None:
    """A Japanese admin's /audit line for a blocked job is in Japanese: the kind, the outcome (the
    error's own title) and the unit, not the core's English codes."""
    async with world.bot():
        world.gemini.script_for_key(KEY, "safety")
        blocked = await world.imagine("ja")
        assert blocked["embeds"][0]["title"] == "🚫 安全フィルターによりブロックされました"
        audit = await world.discord.send_slash("audit", {}, user="admin", locale="ja", force=True)
        answer = await audit.wait_done()
    [embed] = answer["embeds"]
    line = embed["description"]
    assert embed["title"] == "最近のジョブ"
    for english in ("refunded", "SafetyBlocked"):
        assert english not in line, line


async def test_a_pt_br_admin_may_write_a_limit_with_a_decimal_comma(world: World) -> None:
    """/quota set limit:2,5 (how a Brazilian writes two and a half) is taken as 2.5."""
    async with world.bot():
        done = await world.command(
            "quota set", {"scope": "default", "limit": "2,5"}, user="admin", locale="pt-BR"
        )
    refusal = [e.get("description") for e in done.get("embeds") or []]
    assert (done.get("content") or "").startswith("✅"), refusal


# --- a public post turned into the clicker's language ------------------------------------------


async def test_cancelling_a_reply_refine_keeps_the_public_reply_in_the_servers_language(world: World) -> None:
    """A refine started by a reply shows its progress in a public reply in the server's language
    (Spanish here); ❌ Cancel, clicked by a member whose Discord is Japanese, keeps that public
    message in Spanish."""
    async with world.bot(max_running_jobs=1, progress_interval=0.3) as bot:
        made = await world.imagine("en-US")
        world.discord.set_preferred_locale("es-ES")
        guild_id = int(world.discord.guild_id)

        def spanish() -> bool:
            guild = bot.get_guild(guild_id)
            return guild is not None and guild.preferred_locale.value == "es-ES"

        await eventually(spanish, what="the server's new language seen by the bot")
        held = world.gemini.hold_next()  # bob's job holds the one slot
        blocker = await world.discord.send_slash("imagine", {"prompt": "a dog"}, user="bob")
        try:
            await wait_for_text(blocker, "Working with")
            sent = await world.discord.user_message("make it purple", reply_to=made)

            def progress_reply(message: dict[str, Any]) -> bool:
                reference = message.get("message_reference") or {}
                return reference.get("message_id") == sent["id"] and "En cola" in (
                    message.get("content") or ""
                )

            progress = await world.discord.wait_for_message(progress_reply, timeout=HANG)
            click = await world.discord.send_component(progress, cancel_id(progress), locale="ja")
            await click.wait_ack()
            cancelled = world.discord._current(progress)["content"]
        finally:
            held.set()
        await wait_result(blocker)
        assert await bot.service.wait_idle(HANG)
    assert cancelled == "❌ Cancelado. No se cobró nada.", cancelled


# --- the /history sheet's own words in Japanese, where no font has Japanese letters -----------------


async def test_the_history_sheet_never_draws_its_words_as_missing_glyph_boxes(world: World) -> None:
    """/history in Japanese captions a result whose file is gone with 画像なし where a font has Japanese
    letters; where none does (as on a machine without CJK fonts), the caption is English rather than
    missing-glyph boxes, as the /usage chart does."""
    caption = t("ja", "gallery.image_gone")
    if font_face([caption]) is not None:
        pytest.skip("a font here draws Japanese")
    async with world.bot() as bot:
        made = await world.imagine("ja")
        turn = await linked_turn(bot, made)
        [output] = turn.output_images
        blob_path(bot.services.blobs.root, output.sha256).unlink()
        page = await world.discord.send_slash("history", {}, locale="ja")
        shown = world.discord._current(await page.wait_done())
    [(_, sheet)] = world.discord.files_of(shown)
    boxes = draw_sheet([SheetCell(1, job_code(turn.id), "a pear", None)], gone=NO_GLYPH * len(caption))
    drawn_as_boxes = pixels(sheet) == pixels(boxes)
    assert not drawn_as_boxes, f"{caption!r} is drawn as {len(caption)} missing-glyph boxes"


def pixels(png: bytes) -> bytes:
    with Image.open(io.BytesIO(png)) as image:
        return image.convert("RGB").tobytes()


# --- URL-only and task providers: English words inside a translated sentence -------------------------


@pytest.fixture
async def vtrix(tmp_path: Path) -> AsyncIterator[tuple[FakeDiscord, FakeTask]]:
    """The real bot on a Vtrix-style task provider (URL-only inputs)."""
    async with FakeDiscord() as fake, FakeTask(api_key=KEY) as task:
        entry = {"name": "vtrix", "kind": "task", "base_url": task.base_url, "api_key": KEY}
        async with running_bot(fake, tmp_path, entry):
            yield fake, task
        assert fake.violations == []


async def test_a_variation_on_a_url_only_provider_sends_the_results_attachment_url(
    vtrix: tuple[FakeDiscord, FakeTask],
) -> None:
    """🔀 on a result made by a URL-only provider: the previous result goes to the provider as the
    fresh URL of its Discord attachment (it takes images only by URL), and the variation arrives."""
    fake, task = vtrix
    made = await wait_result(await fake.send_slash("imagine", {"prompt": "a boat"}, locale="es-ES"))
    [attachment] = made["attachments"]
    varied = await wait_result(await fake.send_component(made, button_id(made, "vsub"), locale="es-ES"))
    assert fake.files_of(varied), varied.get("embeds")
    [create] = [r for r in task.requests if r.method == "POST"][-1:]
    [url] = create.json["input"][0]["params"]["image_urls"]
    assert url.split("?")[0] == attachment["url"].split("?")[0]  # the result's own file, signed afresh


async def test_a_task_refusal_adds_no_english_word(vtrix: tuple[FakeDiscord, FakeTask]) -> None:
    """A task refused for moderation without a code reads as the service said it, with no English
    reason word such as "(policy)" added."""
    fake, task = vtrix
    task.script(Fault("failed_string", message="Flagged by moderation"))
    refused = await wait_result(await fake.send_slash("imagine", {"prompt": "a boat"}, locale="es-ES"))
    [embed] = refused["embeds"]
    assert embed["title"] == "🚫 Bloqueado por los filtros de seguridad"
    assert "(policy)" not in embed["description"], embed["description"]
