"""Google Search grounding on the Gemini wire: the tool in the body, the fake refusing it where the real
API does, and groundingMetadata read into the result's sources."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from bot.providers.base import GenerateRequest, Sources
from bot.providers.gemini_body import build_body
from bot.providers.models import KNOWN_MODELS
from bot.providers.router import Router
from tests.fakes.providers import FakeGemini
from tests.fakes.providers.gemini_grounding import DEFAULT_PAGES, REDIRECT
from tests.fakes.test_fake_providers import FLASH, FLASH31, PRO, gemini_body, post_gemini

KEY = "gk-search"
QUERY = "a map of Lisbon"


@pytest.fixture
async def fake() -> AsyncIterator[FakeGemini]:
    async with FakeGemini(api_key=KEY) as server:
        yield server


@pytest.fixture
def gemini(fake: FakeGemini, router_for: Callable[..., Router]) -> Router:
    return router_for({"name": "google", "kind": "gemini", "base_url": fake.base_url, "api_key": KEY})


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def posted(fake: FakeGemini) -> list[Any]:
    """The generateContent bodies the fake received, in order."""
    return [r.json for r in fake.requests if r.method == "POST"]


def test_the_tool_is_sent_only_when_asked_and_only_to_grounding_models() -> None:
    asked = GenerateRequest(QUERY, search=True)
    assert build_body(asked, KNOWN_MODELS[PRO])["tools"] == [{"googleSearch": {}}]
    both: dict[str, Any] = {"googleSearch": {"searchTypes": {"webSearch": {}, "imageSearch": {}}}}
    assert build_body(asked, KNOWN_MODELS[FLASH31])["tools"] == [both]
    assert "tools" not in build_body(asked, KNOWN_MODELS[FLASH])  # it would answer 400
    assert "tools" not in build_body(GenerateRequest(QUERY), KNOWN_MODELS[PRO])


async def test_a_grounded_answer_becomes_the_results_sources(gemini: Router, fake: FakeGemini) -> None:
    result = await gemini.generate(GenerateRequest(QUERY, model=PRO, search=True))
    assert result.images
    assert posted(fake)[-1]["tools"] == [{"googleSearch": {}}]
    assert result.sources == Sources((QUERY,), DEFAULT_PAGES)


async def test_each_image_of_a_job_searches_and_the_sources_are_merged(
    gemini: Router, fake: FakeGemini
) -> None:
    fake.grounding_pages = [("a.example", f"{REDIRECT}a")]
    first = await gemini.generate(GenerateRequest(QUERY, model=FLASH31, search=True))
    result = await gemini.generate(GenerateRequest(QUERY, model=FLASH31, search=True, count=3))
    assert len(result.images) == 3 and len(posted(fake)) == 4
    assert (
        result.sources
        == first.sources
        == Sources((QUERY, f"{QUERY} photo"), (("a.example", f"{REDIRECT}a"),))
    )


async def test_no_search_no_sources(gemini: Router, fake: FakeGemini) -> None:
    result = await gemini.generate(GenerateRequest(QUERY, model=PRO))
    assert "tools" not in posted(fake)[-1]
    assert not result.sources


async def test_malformed_grounding_metadata_never_costs_the_image(gemini: Router, fake: FakeGemini) -> None:
    fake.grounding_pages = [("", "https://ok.example/x"), ("long", "https://x.example/" + "y" * 3000)]
    result = await gemini.generate(GenerateRequest(QUERY, model=PRO, search=True))
    assert result.images
    assert result.sources.pages == (("https://ok.example/x", "https://ok.example/x"),)  # titled by its link


@pytest.mark.parametrize(
    ("model", "tools", "needle"),
    [
        (FLASH, [{"googleSearch": {}}], "Search Grounding is not supported"),
        (FLASH, [{"google_search": {}}], "Search Grounding is not supported"),
        (PRO, [{"googleSearch": {"searchTypes": {"imageSearch": {}}}}], "Image search is not supported"),
        (PRO, [{"googleSearch": {"size": 3}}], 'Unknown name "size"'),
        (PRO, [{"codeExecution": {}}], "not supported"),
    ],
)
async def test_the_fake_refuses_search_where_the_api_does(
    http: aiohttp.ClientSession, model: str, tools: list[dict[str, Any]], needle: str
) -> None:
    async with FakeGemini() as fake:
        status, answer = await post_gemini(http, fake, {**gemini_body(), "tools": tools}, model=model)
    assert status == 400 and answer["error"]["status"] == "INVALID_ARGUMENT"
    assert needle in answer["error"]["message"]


@pytest.mark.parametrize(
    ("model", "tools", "web", "image"),
    [
        (PRO, [{"google_search": {}}], True, False),
        (FLASH31, [{"googleSearch": {"searchTypes": {"webSearch": {}, "imageSearch": {}}}}], True, True),
        (FLASH31, [{"googleSearch": {"searchTypes": {"imageSearch": {}}}}], False, True),
    ],
)
async def test_the_fake_answers_a_search_with_grounding_metadata(
    http: aiohttp.ClientSession, model: str, tools: list[dict[str, Any]], web: bool, image: bool
) -> None:
    async with FakeGemini() as fake:
        status, answer = await post_gemini(http, fake, {**gemini_body(), "tools": tools}, model=model)
    assert status == 200, answer
    metadata = answer["candidates"][0]["groundingMetadata"]
    assert ("webSearchQueries" in metadata) is web and ("imageSearchQueries" in metadata) is image
    assert metadata["searchEntryPoint"]["renderedContent"].startswith("<style>")
    kinds = {kind for chunk in metadata["groundingChunks"] for kind in chunk}
    assert kinds == {k for k, on in (("web", web), ("image", image)) if on}
