"""Platform behaviour: 3-second acks under load, token expiry, crashes, command sync, start-up failures."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from bot.app import NanoBot, apply_endpoints, start_bot, sync_only
from tests.botenv import HANG, bot_settings, image_size, running_bot, wait_result
from tests.fakes.discord import FakeDiscord, discord_overrides
from tests.fakes.imagegen import make_image
from tests.fakes.providers import FakeGemini, FakeOpenAIImages

KEY = "platform-gemini-key"


def gemini(fake: FakeGemini, **extra: Any) -> dict[str, Any]:
    return {"name": "google", "kind": "gemini", "base_url": fake.base_url, "api_key": KEY, **extra}


async def test_fifty_commands_at_once_all_acknowledged_in_time(tmp_path: Path) -> None:
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as provider:
        provider.delay = 2.0  # a slow provider: every job outlives the 3-second window
        async with running_bot(
            fake,
            tmp_path,
            gemini(provider),
            max_concurrent_jobs=50,
            max_queued_per_user=50,
            max_running_jobs=8,  # so that most wait, and are told where they stand
        ):
            handles = await asyncio.gather(
                *(fake.send_slash("imagine", {"prompt": f"apple {n}"}) for n in range(50))
            )
            await asyncio.gather(*(h.wait_ack() for h in handles))
            assert all(h.ack_type == 5 for h in handles)
            assert max(h.ack_latency or 99 for h in handles) < 3.0  # Discord's rule, enforced by the fake
            messages = await asyncio.gather(*(wait_result(h) for h in handles))
            assert all(len(h.files(m)) == 1 for h, m in zip(handles, messages, strict=True))
            positions = [
                r for r in fake.requests if r.method == "PATCH" and "Queued: position" in str(r.json)
            ]
            assert positions  # 50 jobs, 8 at a time: the others were told where they stand
        assert fake.violations == []


async def test_job_outliving_the_token_is_posted_as_a_reply(tmp_path: Path) -> None:
    async with FakeDiscord(token_lifetime=1.0) as fake, FakeGemini(api_key=KEY) as provider:
        provider.delay = 1.5
        async with running_bot(fake, tmp_path, gemini(provider), interaction_token_lifetime=1.0):
            inter = await fake.send_slash("imagine", {"prompt": "a slow cathedral"})
            await inter.wait_ack()
            loading_id = inter.original_id
            posted = await fake.wait_for_message(lambda m: bool(m.get("attachments")), timeout=20)
            assert posted["message_reference"]["message_id"] == loading_id
            assert posted["content"] == f"<@{fake.users['alice']['id']}>"
            [(_, data)] = fake.files_of(posted)
            assert data == provider.outputs[-1]
            assert posted["embeds"][0]["description"] == "a slow cathedral"
            buttons = [c["custom_id"] for row in posted["components"] for c in row["components"]]
            assert len(buttons) == 7 and all(b.startswith("nb:") for b in buttons)  # buttons included


async def test_provider_crash_mid_request_then_keeps_serving(tmp_path: Path) -> None:
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as provider:
        async with running_bot(fake, tmp_path, gemini(provider)):
            provider.script("reset", "reset", "reset")
            inter = await fake.send_slash("imagine", {"prompt": "x"})
            message = await inter.wait_done()
            assert "unavailable" in message["embeds"][0]["title"].lower()
            assert "could not be reached" in message["embeds"][0]["description"]
            again = await fake.send_slash("imagine", {"prompt": "y"})
            assert fake.files_of(await again.wait_done())
        assert fake.violations == []


async def test_upscale_uses_capable_provider(tmp_path: Path) -> None:
    async with FakeDiscord() as fake, FakeOpenAIImages(flavor="aikit") as aikit:
        entry = {"name": "aikit", "kind": "openai-images", "base_url": aikit.base_url, "upscale": True}
        async with running_bot(fake, tmp_path, entry):
            source = make_image(256, 128, "PNG", color=(3, 3, 3))
            attachment = fake.upload_attachment(source, "s.png", "image/png")
            inter = await fake.send_slash("upscale", {"image": attachment, "factor": 4})
            message = await inter.wait_done()
            assert image_size(fake.files_of(message)[0][1]) == (1024, 512)
            assert [r.path for r in aikit.requests if r.method == "POST"] == ["/v1/images/upscale"]


async def test_autocomplete_offers_only_what_the_model_supports(tmp_path: Path) -> None:
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as provider:
        async with running_bot(fake, tmp_path, gemini(provider)):
            pro = await fake.send_autocomplete(
                "imagine",
                {"prompt": "x", "model": "gemini-3-pro-image-preview", "aspect_ratio": ""},
                focused="aspect_ratio",
            )
            await pro.wait_ack()
            ratios = [c["value"] for c in pro.autocomplete_choices or []]
            assert "16:9" in ratios and "8:1" not in ratios
            flash31 = await fake.send_autocomplete(
                "imagine",
                {"prompt": "x", "model": "gemini-3.1-flash-image-preview", "resolution": ""},
                focused="resolution",
            )
            await flash31.wait_ack()
            assert [c["value"] for c in flash31.autocomplete_choices or []] == ["0.5K", "1K", "2K", "4K"]
            models = await fake.send_autocomplete("imagine", {"prompt": "x", "model": "pro"}, focused="model")
            await models.wait_ack()
            assert [c["value"] for c in models.autocomplete_choices or []] == ["gemini-3-pro-image-preview"]


async def test_commands_synced_only_when_changed(tmp_path: Path) -> None:
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as provider:
        async with running_bot(fake, tmp_path, gemini(provider)):
            pass
        assert fake.sync_count == 1
        names = {c["name"] for c in fake.commands}
        assert {"imagine", "edit", "upscale"} <= names
        async with running_bot(fake, tmp_path, gemini(provider)):
            pass
        assert fake.sync_count == 1  # same definitions: no second sync
        settings = bot_settings(fake, tmp_path, gemini(provider))
        with discord_overrides(fake):
            apply_endpoints(settings)
            assert await sync_only(NanoBot(settings), fake.token) == 0
        assert fake.sync_count == 2  # `python -m bot sync` forces it


async def test_bad_token_ends_with_one_clear_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with FakeDiscord() as fake:
        settings = bot_settings(fake, tmp_path)
        with discord_overrides(fake):
            apply_endpoints(settings)
            with caplog.at_level(logging.ERROR):
                code = await asyncio.wait_for(start_bot(NanoBot(settings), "wrong-token"), HANG)
        assert code == 2
        [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert "DISCORD_TOKEN was refused" in record.getMessage()


async def test_privileged_intent_missing_ends_with_one_clear_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeDiscord(privileged_intents=0) as fake:
        settings = bot_settings(fake, tmp_path)
        with discord_overrides(fake):
            apply_endpoints(settings)
            with caplog.at_level(logging.ERROR):
                code = await asyncio.wait_for(
                    start_bot(NanoBot(settings, guild_ready_timeout=0.1), fake.token), HANG
                )
        assert code == 2
        [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert "Message Content Intent" in record.getMessage()


async def test_intent_off_connects_without_message_content(tmp_path: Path) -> None:
    async with (
        FakeDiscord(privileged_intents=0) as fake,
        FakeGemini(api_key=KEY) as provider,
        running_bot(fake, tmp_path, gemini(provider), message_content_intent=False),
    ):
        [identify] = fake.identify_payloads
        assert not identify["intents"] & (1 << 15)
