"""Saved styles through the fake Discord: saved from a result or from words and images, applied by
/imagine and /edit (words in the prompt, images as references on the Gemini wire), counted toward the
model's reference limit, listed, deleted, published by admins and imported by share code."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bot.jobs.ids import job_code
from bot.storage.tables import styles
from tests.botenv import (
    GeminiBot,
    button_id,
    embed_fields,
    eventually_async,
    linked_turn,
    running_bot,
    settled_usage,
    text,
    wait_result,
)
from tests.fakes.discord import FakeDiscord
from tests.fakes.imagegen import make_image
from tests.fakes.providers.gemini import FakeGemini

KEY = "styles-key"
FLASH = "gemini-2.5-flash-image"
PRO = "gemini-3-pro-image-preview"


def picture(n: int) -> bytes:
    """A small PNG of its own colour (each image is told apart by its bytes)."""
    return make_image(40 + n, 30, "PNG", color=(n * 37 % 256, 120, 220 - n * 11))


def sent(gemini: FakeGemini) -> tuple[str, list[bytes]]:
    """The text and the images of the last user turn the fake Gemini received."""
    body = gemini.requests[-1].json
    assert body is not None
    parts = body["contents"][-1]["parts"]
    words = " ".join(p["text"] for p in parts if "text" in p)
    return words, [base64.b64decode(p["inlineData"]["data"]) for p in parts if "inlineData" in p]


def cdn_fetches(fake: FakeDiscord) -> int:
    """Attachment downloads the fake CDN served."""
    return sum(1 for r in fake.requests if r.path.startswith("/cdn/"))


def share_code(message: dict[str, Any]) -> str:
    """The share code a /style save or /style import answer shows."""
    return embed_fields(message)["Share code"].strip("`")


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[GeminiBot]:
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as gemini:
        fake.add_user("bob")
        entry = {"name": "google", "kind": "gemini", "base_url": gemini.base_url, "api_key": KEY}
        async with running_bot(fake, tmp_path, entry) as bot:
            yield GeminiBot(fake, gemini, bot, "a lighthouse")
        assert fake.violations == []


async def style(env: GeminiBot, sub: str, options: dict[str, Any], user: str = "alice") -> dict[str, Any]:
    """A /style sub-command and its (private) answer."""
    message = await env.command(f"style {sub}", options, user=user)
    assert message["flags"] & 64, "a /style answer is for the member alone"
    return message


async def styled_rows(env: GeminiBot) -> list[Any]:
    """The styles table as stored."""
    async with env.bot.services.db.connect() as conn:
        return list(await conn.execute(sa.select(styles).order_by(styles.c.id)))


async def test_a_style_saved_from_a_result_sends_its_prompt_and_images(env: GeminiBot) -> None:
    first = await wait_result(
        await env.discord.send_slash("imagine", {"prompt": "linocut print, bold lines", "model": PRO})
    )
    [(_, made)] = env.discord.files_of(first)
    turn = await linked_turn(env.bot, first)
    saved = await style(env, "save", {"name": "lino", "job": job_code(turn.id).lower()})
    assert "Saved “lino”" in text(saved) and embed_fields(saved)["Images"] == "1"
    [row] = await styled_rows(env)
    assert row.prompt == "linocut print, bold lines"  # the result's whole prompt
    assert row.images == [ref.to_json() for ref in turn.output_images]  # its stored files, no copy

    reference = picture(1)
    inter = await env.discord.send_slash(
        "imagine", {"prompt": "a harbour.", "model": PRO, "style": "lino", "image": ("r.png", reference)}
    )
    result = await wait_result(inter)
    assert env.discord.files_of(result), text(result)
    words, images = sent(env.gemini)
    assert words == "a harbour. Style: linocut print, bold lines"
    assert images == [reference, made]  # the job's own reference first, then the style's image
    assert embed_fields(result)["References"] == "2 images"


async def test_a_style_from_words_and_attachments_reaches_imagine_and_edit(env: GeminiBot) -> None:
    options = {"name": "pastel", "prompt": "soft pastel colours", "image": ("a.png", picture(1))}
    saved = await style(env, "save", {**options, "image2": ("b.png", picture(2))})
    assert embed_fields(saved)["Images"] == "2"
    offered = await env.discord.send_autocomplete("imagine", {"prompt": "x", "style": "pas"}, focused="style")
    await offered.wait_ack()
    assert [(c["name"], c["value"]) for c in offered.autocomplete_choices or []] == [
        ("pastel (yours)", "pastel")
    ]

    made = await wait_result(
        await env.discord.send_slash("imagine", {"prompt": "a fox", "model": PRO, "style": "Pastel"})
    )
    assert env.discord.files_of(made), text(made)
    assert sent(env.gemini) == ("a fox. Style: soft pastel colours", [picture(1), picture(2)])
    turn = await linked_turn(env.bot, made)
    assert turn.prompt == "a fox. Style: soft pastel colours"

    edited = await wait_result(
        await env.discord.send_slash(
            "edit",
            {"prompt": "make it night", "model": PRO, "style": "pastel", "image": ("e.png", picture(5))},
        )
    )
    assert env.discord.files_of(edited), text(edited)
    assert sent(env.gemini) == (
        "make it night. Style: soft pastel colours",
        [picture(5), picture(1), picture(2)],  # the edited image first
    )


async def test_a_styles_images_count_toward_the_reference_limit(env: GeminiBot) -> None:
    await style(
        env,
        "save",
        {"name": "duo", "prompt": "duotone", "image": ("a.png", picture(1)), "image2": ("b.png", picture(2))},
    )
    await env.imagine(model=FLASH)  # something charged, so "nothing more" means something
    before, calls, fetched = (
        await settled_usage(env.discord, env.bot),
        env.gemini.calls,
        cdn_fetches(env.discord),
    )
    options = {
        "model": FLASH,
        "style": "duo",
        "image": ("c.png", picture(3)),
        "image2": ("d.png", picture(4)),
    }
    refused = await wait_result(await env.discord.send_slash("imagine", {"prompt": "a fox", **options}))
    assert f"{FLASH} takes at most 3 input images; this job has 4" in text(refused)
    assert not env.discord.files_of(refused)
    assert env.gemini.calls == calls
    assert cdn_fetches(env.discord) == fetched  # nothing downloaded
    assert await settled_usage(env.discord, env.bot) == before  # nothing charged


async def test_an_unknown_style_is_refused_before_anything_is_charged(env: GeminiBot) -> None:
    refused = await wait_result(await env.discord.send_slash("imagine", {"prompt": "a fox", "style": "nope"}))
    assert "There is no style named “nope”" in text(refused)
    assert refused["flags"] & 64
    assert env.gemini.calls == 0
    assert await settled_usage(env.discord, env.bot) == (0, 0)


async def test_list_and_delete(env: GeminiBot) -> None:
    ink = await style(env, "save", {"name": "ink", "prompt": "sumi-e"})
    await style(env, "save", {"name": "noir", "prompt": "black and white film"})
    listed = await style(env, "list", {})
    mine = embed_fields(listed)["Yours"]
    assert "**ink**" in mine and share_code(ink) in mine and "black and white film" in mine
    gone = await style(env, "delete", {"name": "INK"})
    assert "Deleted “ink” from your styles" in text(gone)
    mine = embed_fields(await style(env, "list", {}))["Yours"]
    assert "ink" not in mine and "noir" in mine
    again = await style(env, "delete", {"name": "ink"})
    assert "You have no style named “ink”" in text(again)
    refused = await wait_result(await env.discord.send_slash("imagine", {"prompt": "x", "style": "ink"}))
    assert "There is no style named “ink”" in text(refused)
    assert [row.name for row in await styled_rows(env)] == ["noir"]


async def test_admins_publish_server_styles_everyone_can_use(env: GeminiBot) -> None:
    options = {"name": "house", "prompt": "our house style", "server": True}
    refused = await style(env, "save", options)  # alice has no Manage Server
    assert "Manage Server" in text(refused)
    assert await styled_rows(env) == []
    published = await style(env, "save", {**options, "image": ("h.png", picture(7))}, user="admin")
    assert "this server's styles" in text(published)

    offered = await env.discord.send_autocomplete("imagine", {"prompt": "x", "style": ""}, focused="style")
    await offered.wait_ack()
    assert [c["name"] for c in offered.autocomplete_choices or []] == ["house (server)"]
    listed = embed_fields(await style(env, "list", {}))
    assert "house" in listed["This server's"] and "house" not in listed["Yours"]
    made = await wait_result(
        await env.discord.send_slash("imagine", {"prompt": "a barn", "model": PRO, "style": "house"})
    )
    assert env.discord.files_of(made), text(made)
    assert sent(env.gemini) == ("a barn. Style: our house style", [picture(7)])

    kept = await style(env, "delete", {"name": "house", "server": True})
    assert "Manage Server" in text(kept)
    deleted = await style(env, "delete", {"name": "house", "server": True}, user="admin")
    assert "from this server's styles" in text(deleted)
    assert await styled_rows(env) == []


async def test_a_share_code_lets_another_member_import_a_style(env: GeminiBot) -> None:
    saved = await style(env, "save", {"name": "ink", "prompt": "sumi-e", "image": ("i.png", picture(4))})
    code = share_code(saved)
    hidden = await wait_result(
        await env.discord.send_slash("imagine", {"prompt": "x", "style": "ink"}, user="bob")
    )
    assert "There is no style named “ink”" in text(hidden)  # alice's own style is hers alone
    imported = await style(env, "import", {"code": f"{code[:4].lower()}-{code[4:]}"}, user="bob")
    assert "Saved “ink”" in text(imported) and share_code(imported) != code
    made = await wait_result(
        await env.discord.send_slash(
            "imagine", {"prompt": "a crane", "model": PRO, "style": "ink"}, user="bob"
        )
    )
    assert env.discord.files_of(made), text(made)
    assert sent(env.gemini) == ("a crane. Style: sumi-e", [picture(4)])
    rows = await styled_rows(env)
    assert [(r.owner_id, r.name) for r in rows] == [
        (int(env.discord.users["alice"]["id"]), "ink"),
        (int(env.discord.users["bob"]["id"]), "ink"),
    ]
    unknown = await style(env, "import", {"code": "ZZZZ2222"}, user="bob")
    assert "No style has the share code `ZZZZ2222`" in text(unknown)


async def test_the_upload_form_keeps_the_style_and_unknown_results_are_refused(env: GeminiBot) -> None:
    await style(env, "save", {"name": "ink", "prompt": "sumi-e", "image": ("i.png", picture(4))})
    options = {"prompt": "a crane", "model": PRO, "style": "ink", "upload": True}
    opened = await env.discord.send_slash("imagine", options)
    await opened.wait_ack()
    assert opened.modal is not None
    [field] = [
        row["component"]["custom_id"]
        for row in opened.modal["components"]
        if (row.get("component") or {}).get("type") == 19
    ]
    submit = await env.discord.send_modal_submit(opened.modal["custom_id"], {field: [("u.png", picture(6))]})
    made = await wait_result(submit)
    assert env.discord.files_of(made), text(made)
    assert sent(env.gemini) == ("a crane. Style: sumi-e", [picture(6), picture(4)])
    refused = await style(env, "save", {"name": "ghost", "job": "ZZZZ"})
    assert "There is no result with that id that you can show here" in text(refused)


async def test_deleting_the_result_a_style_was_saved_from_keeps_the_styles_images(env: GeminiBot) -> None:
    first = await wait_result(await env.discord.send_slash("imagine", {"prompt": "woodcut", "model": PRO}))
    [(_, made)] = env.discord.files_of(first)
    turn = await linked_turn(env.bot, first)
    await style(env, "save", {"name": "wood", "job": job_code(turn.id)})
    deleting = await env.discord.send_component(first, button_id(first, "del"))
    await deleting.wait_ack()
    await eventually_async(lambda: is_deleted(env, turn.id), what="the result deleted")
    inter = await env.discord.send_slash("imagine", {"prompt": "a barn.", "model": PRO, "style": "wood"})
    result = await wait_result(inter)
    assert env.discord.files_of(result), text(result)  # the style's image is still there
    assert sent(env.gemini)[1] == [made]


async def is_deleted(env: GeminiBot, turn_id: int) -> bool:
    """Whether the result's turn is marked deleted."""
    turn = await env.bot.service.turns.get(turn_id)
    return turn is not None and turn.status == "deleted"
