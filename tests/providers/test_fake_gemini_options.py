"""The fake Gemini checks seed, thinking level and safety settings as the real API documents them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.fakes.providers import FakeGemini
from tests.fakes.test_fake_providers import FLASH, FLASH31, PRO, gemini_body, post_gemini


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp client session."""
    async with aiohttp.ClientSession() as session:
        yield session


def body_with(config: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    """A minimal body with extra generationConfig fields and top-level fields."""
    body = gemini_body()
    body["generationConfig"].update(config or {})
    return {**body, **top}


@pytest.mark.parametrize(
    ("model", "config", "top"),
    [
        (FLASH31, {"seed": 2**31 - 1, "thinkingConfig": {"thinkingLevel": "MINIMAL"}}, {}),
        (PRO, {"thinking_config": {"thinking_level": "low"}}, {}),  # snake_case, lower-case level
        (
            FLASH,
            {"seed": 0},
            {"safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_ONLY_HIGH"}]},
        ),
    ],
)
async def test_accepted(http: aiohttp.ClientSession, model: str, config: dict[str, Any], top: dict) -> None:
    async with FakeGemini() as fake:
        status, answer = await post_gemini(http, fake, body_with(config, **top), model=model)
    assert status == 200, answer


@pytest.mark.parametrize(
    ("model", "config", "top", "needle"),
    [
        (FLASH, {"thinkingConfig": {"thinkingLevel": "HIGH"}}, {}, "not supported for this model"),
        (PRO, {"thinkingConfig": {"thinkingLevel": "MINIMAL"}}, {}, "not supported for this model"),
        (PRO, {"thinkingConfig": {"thinkingLevel": "HUGE"}}, {}, "ThinkingLevel"),
        (PRO, {"seed": "42"}, {}, "generation_config.seed"),
        (PRO, {"seed": 2**31}, {}, "generation_config.seed"),
        (
            PRO,
            {},
            {"safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "LOW"}]},
            "Threshold",
        ),
        (PRO, {}, {"safetySettings": [{"category": "HARASSMENT", "threshold": "OFF"}]}, "HarmCategory"),
        (
            PRO,
            {},
            {"safetySettings": [{"category": "HARM_CATEGORY_TOXICITY", "threshold": "OFF"}]},
            "supported",
        ),
    ],
)
async def test_refused(
    http: aiohttp.ClientSession, model: str, config: dict[str, Any], top: dict, needle: str
) -> None:
    async with FakeGemini() as fake:
        status, answer = await post_gemini(http, fake, body_with(config, **top), model=model)
    assert status == 400
    assert answer["error"]["status"] == "INVALID_ARGUMENT" and needle in answer["error"]["message"]
