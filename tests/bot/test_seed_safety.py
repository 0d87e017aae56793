"""Seed, thinking level and the server's safety level, from Discord to the Gemini wire and back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.botenv import GeminiBot, button_id, embed_fields, gemini_bot, linked_turn, text

KEY = "seed-key"
FLASH = "gemini-2.5-flash-image"
PRO = "gemini-3-pro-image-preview"
NB2 = "gemini-3.1-flash-image-preview"
CATEGORIES = [
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
]


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[GeminiBot]:
    async with gemini_bot(tmp_path, KEY, prompt="a lighthouse") as found:
        yield found


async def test_seed_and_thinking_reach_the_wire_the_embed_and_the_turn(env: GeminiBot) -> None:
    message = await env.imagine(model=NB2, seed=1234, thinking="high")
    assert env.discord.files_of(message)
    config = env.sent()["generationConfig"]
    assert config["seed"] == 1234
    assert config["thinkingConfig"] == {"thinkingLevel": "HIGH"}
    assert embed_fields(message)["Seed"] == "1234"
    turn = await linked_turn(env.bot, message)
    assert turn.seed == 1234 and turn.options["thinking"] == "high"


async def test_a_seed_is_picked_when_none_is_given_and_shown(env: GeminiBot) -> None:
    message = await env.imagine()
    seed = env.sent()["generationConfig"]["seed"]
    assert isinstance(seed, int) and 0 <= seed < 2**31
    assert "thinkingConfig" not in env.sent()["generationConfig"]
    assert embed_fields(message)["Seed"] == str(seed)
    assert (await linked_turn(env.bot, message)).seed == seed


async def test_each_image_of_a_job_gets_its_own_seed(env: GeminiBot) -> None:
    message = await env.imagine(seed=2**31 - 1, count=2)
    assert len(env.discord.files_of(message)) == 2
    seeds = sorted(r.json["generationConfig"]["seed"] for r in env.gemini.requests if r.method == "POST")
    assert seeds == [0, 2**31 - 1]  # seed + 1 wraps within the int32 the API takes
    assert embed_fields(message)["Seed"] == f"{2**31 - 1} (+1 per image)"


async def test_reroll_uses_a_new_seed_and_keeps_the_thinking_level(env: GeminiBot) -> None:
    first = await env.imagine(model=PRO, seed=77, thinking="low")
    inter = await env.discord.send_component(first, button_id(first, "reroll"))
    second = await inter.wait_done()
    config = env.sent()["generationConfig"]
    assert config["seed"] != 77
    assert config["thinkingConfig"] == {"thinkingLevel": "LOW"}
    assert embed_fields(second)["Seed"] == str(config["seed"])
    assert (await linked_turn(env.bot, second)).seed == config["seed"]


async def test_a_thinking_level_the_model_does_not_take_is_refused_before_any_call(env: GeminiBot) -> None:
    refused = await env.imagine(model=FLASH, thinking="high")
    assert f"{FLASH} takes no thinking level" in text(refused)
    wrong = await env.imagine(model=PRO, thinking="minimal")
    assert f"{PRO} does not take thinking level minimal; choose low, high" in text(wrong)
    assert env.gemini.calls == 0
    assert not [r for r in env.gemini.requests if r.method == "POST"]


@pytest.mark.parametrize(
    ("model", "levels"), [(FLASH, []), (PRO, ["low", "high"]), (NB2, ["minimal", "high"])]
)
async def test_thinking_autocomplete_offers_the_models_levels(
    env: GeminiBot, model: str, levels: list[str]
) -> None:
    offered = await env.discord.send_autocomplete(
        "imagine", {"prompt": "x", "model": model, "thinking": ""}, focused="thinking"
    )
    await offered.wait_ack()
    assert [c["value"] for c in offered.autocomplete_choices or []] == levels


async def test_default_safety_sends_no_settings_and_strict_blocks_more(env: GeminiBot) -> None:
    await env.imagine()
    assert "safetySettings" not in env.sent()
    shown = await env.command("settings set", {"safety": "strict"}, user="admin")
    assert embed_fields(shown)["Safety"].startswith("strict")
    await env.imagine()
    expected = [{"category": c, "threshold": "BLOCK_LOW_AND_ABOVE"} for c in CATEGORIES]
    assert env.sent()["safetySettings"] == expected


async def test_relaxed_applies_only_in_age_restricted_channels(env: GeminiBot) -> None:
    shown = await env.command("settings set", {"safety": "relaxed"}, user="admin")
    assert "default elsewhere" in embed_fields(shown)["Safety"]
    assert env.discord.files_of(await env.imagine(channel_id=env.discord.nsfw_channel_id))
    expected = [{"category": c, "threshold": "BLOCK_ONLY_HIGH"} for c in CATEGORIES]
    assert env.sent()["safetySettings"] == expected
    assert env.discord.files_of(await env.imagine())  # "general" is not age-restricted
    assert "safetySettings" not in env.sent()


async def test_edit_takes_a_seed_and_a_thinking_level(env: GeminiBot) -> None:
    await env.imagine(model=NB2)
    edited = await env.command("edit", {"prompt": "at night", "model": NB2, "seed": 5, "thinking": " High"})
    assert env.discord.files_of(edited)
    config = env.sent()["generationConfig"]
    assert config["seed"] == 5 and config["thinkingConfig"] == {"thinkingLevel": "HIGH"}
    assert embed_fields(edited)["Seed"] == "5"
