"""The model catalogue seen from Discord: a model's limits are offered and enforced before any call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.botenv import running_bot
from tests.fakes.discord import FakeDiscord
from tests.fakes.providers import FakeGemini

KEY = "gemini-secret-key"
LITE = "gemini-3.1-flash-lite-image-preview"


def gemini(fake: FakeGemini) -> dict[str, Any]:
    return {
        "name": "google",
        "kind": "gemini",
        "base_url": fake.base_url,
        "api_key": KEY,
        "models": ["gemini-2.5-flash-image", LITE],
    }


async def test_flash_lite_at_2k_is_refused_before_any_provider_call(tmp_path: Path) -> None:
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as provider:
        async with running_bot(fake, tmp_path, gemini(provider)):
            offered = await fake.send_autocomplete(
                "imagine", {"prompt": "x", "model": LITE, "resolution": ""}, focused="resolution"
            )
            await offered.wait_ack()
            assert [c["value"] for c in offered.autocomplete_choices or []] == ["1K"]
            inter = await fake.send_slash(
                "imagine", {"prompt": "a lighthouse", "model": LITE, "resolution": "2K"}
            )
            message = await inter.wait_done()
            [embed] = message["embeds"]
            assert f"{LITE} does not offer 2K; choose 1K" in embed["description"]
            assert not inter.files(message)
            assert provider.calls == 0
            assert not [r for r in provider.requests if r.method == "POST"]
        assert fake.violations == []
