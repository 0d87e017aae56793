"""Google Search grounding from Discord: the search option and the server default on the Gemini wire,
refused on models without grounding, and the sources shown under the result."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.botenv import GeminiBot, embed_fields, gemini_bot, linked_turn, settled_usage, text
from tests.fakes.providers.gemini_grounding import DEFAULT_PAGES

KEY = "search-key"
FLASH = "gemini-2.5-flash-image"
PRO = "gemini-3-pro-image-preview"
NB2 = "gemini-3.1-flash-image-preview"


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[GeminiBot]:
    async with gemini_bot(tmp_path, KEY, prompt="the lighthouse of Alexandria") as found:
        yield found


async def test_search_on_pro_sends_the_tool_and_shows_the_sources(env: GeminiBot) -> None:
    message = await env.imagine(model=PRO, search="on")
    assert env.discord.files_of(message)
    assert env.posts()[-1]["tools"] == [{"googleSearch": {}}]
    shown = embed_fields(message)["Sources"]
    for title, uri in DEFAULT_PAGES:
        assert f"[{title}]({uri})" in shown
    query = "the lighthouse of Alexandria"
    assert f"[{query}](https://www.google.com/search?q=the+lighthouse+of+Alexandria)" in shown
    turn = await linked_turn(env.bot, message)
    assert turn.options["sources"] == {"queries": [query], "pages": [list(p) for p in DEFAULT_PAGES]}
    assert turn.options["search"] is True


async def test_search_on_31_flash_also_searches_images(env: GeminiBot) -> None:
    message = await env.imagine(model=NB2, search="on")
    assert env.posts()[-1]["tools"] == [
        {"googleSearch": {"searchTypes": {"webSearch": {}, "imageSearch": {}}}}
    ]
    shown = embed_fields(message)["Sources"]
    assert "the lighthouse of Alexandria photo" in shown  # the image search's query
    assert shown.count(DEFAULT_PAGES[0][1]) == 1  # the image's page is the web page already listed


async def test_search_on_a_model_without_grounding_is_refused_before_anything(env: GeminiBot) -> None:
    await env.imagine(model=FLASH)  # something charged, so "nothing more" means something
    before = await settled_usage(env.discord, env.bot)
    assert before[0] > 0
    calls = env.gemini.calls
    refused = await env.imagine(model=FLASH, search="on")
    assert f"{FLASH} cannot ground its images in Google Search" in text(refused)
    assert not env.discord.files_of(refused)
    assert env.gemini.calls == calls
    assert await settled_usage(env.discord, env.bot) == before


async def test_no_search_asked_sends_no_tool_and_shows_no_sources(env: GeminiBot) -> None:
    message = await env.imagine(model=PRO)
    assert "tools" not in env.posts()[-1]
    assert "Sources" not in embed_fields(message)
    off = await env.imagine(model=PRO, search="off")
    assert "tools" not in env.posts()[-1]
    assert "Sources" not in embed_fields(off)


async def test_the_server_default_grounds_capable_models_only(env: GeminiBot) -> None:
    shown = await env.command("settings set", {"search": "on"}, user="admin")
    assert embed_fields(shown)["Google Search"].startswith("on")
    assert "Sources" in embed_fields(await env.imagine(model=PRO))
    assert env.posts()[-1]["tools"] == [{"googleSearch": {}}]
    flash = await env.imagine(model=FLASH)  # the default does not apply: no refusal, no tool
    assert env.discord.files_of(flash)
    assert "tools" not in env.posts()[-1]
    await env.imagine(model=PRO, search="off")  # a job may still turn it off
    assert "tools" not in env.posts()[-1]
    edited = await env.command("edit", {"prompt": "at dusk", "model": NB2})
    assert env.discord.files_of(edited)
    assert "googleSearch" in env.posts()[-1]["tools"][0]
    shown = await env.command("settings set", {"search": "off"}, user="admin")
    assert embed_fields(shown)["Google Search"].startswith("off")
    await env.imagine(model=PRO)
    assert "tools" not in env.posts()[-1]


async def test_hostile_source_titles_are_shown_inert_and_within_limits(env: GeminiBot) -> None:
    evil = "**Bold** @everyone <@123> [click](https://evil.example) `code` " + "A" * 3000
    env.gemini.grounding_pages = [
        (evil, "https://example.org/page_(1)"),
        ("javascript", "javascript:alert(1)"),
        *((f"site {n}", f"https://example.org/{n}?q={'x' * 300}") for n in range(8)),
    ]
    message = await env.imagine(model=PRO, search="on")
    shown = embed_fields(message)["Sources"]
    assert len(shown) <= 1024
    assert "@everyone" not in shown and "@\u200beveryone" in shown
    assert "<@123>" not in shown
    assert "**Bold**" not in shown and "\\*\\*Bold\\*\\*" in shown
    assert "https://evil.example" not in shown  # the title's own link stays text
    assert "javascript:" not in shown
    assert "(https://example.org/page_%281%29)" in shown  # parentheses cannot end the link early
    links = [line for line in shown.splitlines() if line.startswith("• ")]
    assert 1 <= len(links) <= 5
    assert all(line.endswith(")") for line in links)  # every link shown whole


@pytest.mark.parametrize(("model", "offered"), [(FLASH, []), (PRO, ["on", "off"]), (NB2, ["on", "off"])])
async def test_search_autocomplete_offers_it_only_where_the_model_grounds(
    env: GeminiBot, model: str, offered: list[str]
) -> None:
    for command in ("imagine", "edit"):
        typed = await env.discord.send_autocomplete(
            command, {"prompt": "x", "model": model, "search": ""}, focused="search"
        )
        await typed.wait_ack()
        assert [c["value"] for c in typed.autocomplete_choices or []] == offered


async def test_a_search_value_other_than_on_or_off_is_answered_at_once(env: GeminiBot) -> None:
    answer = await env.imagine(model=PRO, search="maybe")
    assert "The search option takes on or off" in text(answer)
    assert env.gemini.calls == 0
