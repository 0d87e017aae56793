"""Real cost from Gemini's reported usage, through the fake Discord and the fake Gemini: the turn keeps
the summed token counts; with [costs] mode = "tokens" the member is charged what was reported (never
more than reserved), and the audit row, /usage and the embed say so."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import NanoBot
from tests.botenv import GeminiWorld, embed_fields, gemini_world, linked_turn, settled_usage

KEY = "token-key"
PRO = "gemini-3-pro-image-preview"
PROMPT = "a lighthouse"
#: 3 Pro Image's shipped token prices, credits per million: input, output, thinking.
PRICES = (50, 3000, 300)
LIMIT = 20  # credits a day


@contextlib.asynccontextmanager
async def bot_with(world: GeminiWorld, **costs: Any) -> AsyncIterator[NanoBot]:
    """The bot on the world's fakes with these cost rules, and a daily limit for every member."""
    # Unstreamed calls: the usage checked here is the generateContent answer's.
    async with world.bot(costs=costs, live_preview=False) as bot:
        inter = await world.discord.send_slash(
            "quota set", {"scope": "default", "limit": str(LIMIT), "window": "day"}, user="admin"
        )
        assert "✅" in (await inter.wait_done())["content"]
        yield bot


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[GeminiWorld]:
    async with gemini_world(GeminiWorld, tmp_path, KEY) as found:
        yield found


async def imagine(world: GeminiWorld, **options: Any) -> dict[str, Any]:
    """/imagine as alice; the result message."""
    inter = await world.discord.send_slash("imagine", {"prompt": PROMPT, **options})
    return await inter.wait_done()


def reported_usage(world: GeminiWorld, candidates: int = 1120 + 8) -> dict[str, int]:
    """The token counts the fake Gemini reports (its `_envelope` and `_output_usage`) for each 1K
    image on 3 Pro it made: a token per four prompt characters, the image and 8 text tokens, 215
    thinking tokens; summed over its calls."""
    calls = len([r for r in world.gemini.requests if r.method == "POST"])
    per_call = {
        "promptTokenCount": len(PROMPT) // 4,
        "candidatesTokenCount": candidates,
        "thoughtsTokenCount": 215,
    }
    return {key: calls * value for key, value in per_call.items()}


def cents_of(usage: dict[str, int], images: int, per_image: int = 1120) -> int:
    """What those tokens cost on 3 Pro Image, in cents, rounded up (computed here, not by the bot):
    the image tokens (1120 per 1K image, as the fake's candidatesTokensDetails says) at the output
    price, the text beside them and the thoughts at the thinking price."""
    input_price, output_price, thinking_price = PRICES
    image = per_image * images
    micro = (
        usage["promptTokenCount"] * input_price
        + image * output_price
        + (usage["candidatesTokenCount"] - image + usage["thoughtsTokenCount"]) * thinking_price
    )
    return -(-micro // 10_000)  # credits per million tokens → cents, rounded up


async def test_a_token_priced_job_is_charged_the_reported_cost(world: GeminiWorld) -> None:
    async with bot_with(world, mode="tokens") as bot:
        message = await imagine(world, model=PRO, count=2)
        assert len(world.discord.files_of(message)) == 2
        usage = reported_usage(world)
        assert usage["candidatesTokenCount"] == 2 * 1128 and usage["thoughtsTokenCount"] == 2 * 215
        turn = await linked_turn(bot, message)
        assert {k: turn.usage[k] for k in usage} == usage  # both calls' tokens, added up
        cost = cents_of(usage, images=2)
        # The estimate: 3 prompt tokens, 1420 out and 2000 thinking tokens allowed per image.
        estimate = -(-(2 * (3 * 50 + 1420 * 3000 + 2000 * 300)) // 10_000)
        assert cost == 686 < estimate == 973
        assert await settled_usage(world.discord, bot) == (cost, 0)
        assert embed_fields(message)["Cost"] == "6.86 credits"
        [row] = await bot.quotas.audit(int(world.discord.guild_id))
        assert (row.cost_cents, row.status, row.outcome) == (cost, "committed", "ok (reserved 9.73)")
        inter = await world.discord.send_slash("usage", {})
        fields = {f["name"]: f["value"] for f in (await inter.wait_done())["embeds"][0]["fields"]}
        assert fields["Used"] == "6.86 credits"  # of 20: 13.14 left


async def test_a_reported_cost_above_the_estimate_charges_only_the_reservation(
    world: GeminiWorld, caplog: pytest.LogCaptureFixture
) -> None:
    details = [{"modality": "IMAGE", "tokenCount": 5000}]
    world.gemini.usage_override = {"candidatesTokenCount": 5000, "candidatesTokensDetails": details}
    async with bot_with(world, mode="tokens") as bot:
        with caplog.at_level(logging.INFO, logger="bot.billing.admission"):
            message = await imagine(world, model=PRO)
            assert world.discord.files_of(message)
            estimate = -(-(3 * 50 + 1420 * 3000 + 2000 * 300) // 10_000)
            assert (
                cents_of(reported_usage(world, candidates=5000), images=1, per_image=5000) > estimate == 487
            )
            assert await settled_usage(world.discord, bot) == (estimate, 0)
        [row] = await bot.quotas.audit(int(world.discord.guild_id))
        assert (row.cost_cents, row.outcome) == (estimate, "ok")
        assert embed_fields(message)["Cost"] == "4.87 credits"
        [logged] = [r.getMessage() for r in caplog.records if r.name == "bot.billing.admission"]
        assert f"reservation {row.id}: reported cost 15.07 credits" in logged and PROMPT not in logged


async def test_images_mode_charges_the_image_price_and_still_records_the_usage(world: GeminiWorld) -> None:
    async with bot_with(world) as bot:
        message = await imagine(world, model=PRO, count=2)
        turn = await linked_turn(bot, message)
        assert turn.usage["candidatesTokenCount"] == 2 * 1128
        assert await settled_usage(world.discord, bot) == (700, 0)  # 2 × 3.5 credits, as before
        [row] = await bot.quotas.audit(int(world.discord.guild_id))
        assert (row.cost_cents, row.outcome) == (700, "ok")


async def test_an_absurd_reported_count_charges_the_reservation_and_delivers(world: GeminiWorld) -> None:
    world.gemini.usage_override = {"thoughtsTokenCount": 10**400}
    async with bot_with(world, mode="tokens") as bot:
        message = await imagine(world, model=PRO)
        assert world.discord.files_of(message)
        estimate = -(-(3 * 50 + 1420 * 3000 + 2000 * 300) // 10_000)
        assert await settled_usage(world.discord, bot) == (estimate, 0)  # not believed: the reservation
        assert embed_fields(message)["Cost"] == "4.87 credits"
