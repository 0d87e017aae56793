"""Streamed generateContent (live previews) against the fake Gemini over real HTTP: thought images handed
on as they arrive, the merged answer read exactly as the non-streamed one, errors and cut streams."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bot.errors import ProviderUnavailable, RateLimited
from bot.providers.base import GenerateRequest, GenerateResult, Preview
from bot.providers.gemini import GeminiProvider
from bot.providers.gemini_body import build_body
from bot.providers.gemini_stream import (
    SseSplitter,
    StreamedAnswer,
    event_data,
    stream_answer,
    thought_summary,
)
from bot.providers.models import KNOWN_MODELS
from bot.providers.router import Router
from tests.fakes.providers import FakeGemini
from tests.fakes.providers.gemini_request import GeminiError

KEY = "gk-stream"
FLASH = "gemini-2.5-flash-image"
PRO = "gemini-3-pro-image-preview"
NB2 = "gemini-3.1-flash-image-preview"
STREAM_PATH = f"/v1beta/models/{PRO}:streamGenerateContent"
#: Seconds a wait in these tests may take before it is taken for a hang (a passing test never waits it).
HANG = 30.0


class Previews:
    """A preview hook that records what it is told, and lets a test wait for the n-th preview."""

    def __init__(self) -> None:
        self.seen: list[Preview] = []
        self._changed = asyncio.Event()

    async def __call__(self, preview: Preview) -> None:
        self.seen.append(preview)
        self._changed.set()

    async def wait_for(self, count: int) -> None:
        """Until `count` previews have been shown."""
        async with asyncio.timeout(HANG):
            while len(self.seen) < count:
                self._changed.clear()
                await self._changed.wait()


@pytest.fixture
async def fake() -> AsyncIterator[FakeGemini]:
    async with FakeGemini(api_key=KEY) as server:
        yield server


@pytest.fixture
def gemini(fake: FakeGemini, router_for: Callable[..., Router]) -> Router:
    return router_for({"name": "google", "kind": "gemini", "base_url": fake.base_url, "api_key": KEY})


def provider_of(router: Router) -> GeminiProvider:
    provider = router.get("google")
    assert isinstance(provider, GeminiProvider)
    return provider


def thought_images(chunks: list[dict[str, Any]]) -> list[bytes]:
    """The interim images a stream sent, in order."""
    parts = [p for c in chunks for p in c["candidates"][0].get("content", {}).get("parts", [])]
    return [
        base64.b64decode(p["inlineData"]["data"]) for p in parts if p.get("thought") and "inlineData" in p
    ]


def same_result(a: GenerateResult, b: GenerateResult) -> None:
    assert [(i.data, i.mime) for i in a.images] == [(i.data, i.mime) for i in b.images]
    assert (a.state, a.text, a.sources, a.usage, a.model) == (b.state, b.text, b.sources, b.usage, b.model)


async def test_thought_images_are_shown_in_order_before_the_final_image(
    gemini: Router, fake: FakeGemini
) -> None:
    fake.stream.extra_thought_images = 1  # two interim images, as Google sends at most
    second = fake.stream.hold("thought_image", nth=2)
    final = fake.stream.hold("image")
    previews = Previews()
    job = asyncio.create_task(
        gemini.generate(GenerateRequest("a lighthouse", model=PRO, on_preview=previews))
    )
    await previews.wait_for(1)
    [first_image] = thought_images(fake.stream.sent[-1])
    assert previews.seen[0].image.data == first_image
    assert previews.seen[0].summary == "Composing the scene"
    second.set()
    await previews.wait_for(2)
    model_image = thought_images(fake.stream.sent[-1])[-1]
    assert previews.seen[1].image.data == model_image
    assert not job.done()  # the final image has not been sent yet
    final.set()
    result = await job
    assert result.images[0].data == fake.outputs[-1] != model_image
    [request] = [r for r in fake.requests if r.method == "POST"]
    assert request.path == STREAM_PATH and request.query == {"alt": "sse"}
    assert (request.json or {})["generationConfig"]["thinkingConfig"] == {"includeThoughts": True}


@pytest.mark.parametrize(
    ("model", "options"),
    [
        (PRO, {"resolution": "2K", "search": True}),
        (NB2, {"aspect_ratio": "16:9", "thinking": "high", "seed": 42}),
    ],
)
async def test_the_streamed_result_is_the_non_streamed_reading_of_the_same_answer(
    gemini: Router, fake: FakeGemini, model: str, options: dict[str, Any]
) -> None:
    previews = Previews()
    streamed = await gemini.generate(
        GenerateRequest("a map of Lisbon", model=model, on_preview=previews, **options)
    )
    [answer] = fake.stream.answers  # what generateContent would have answered, whole
    same_result(streamed, provider_of(gemini).read_answer(answer, model))
    assert streamed.images[0].data == fake.outputs[-1]
    [signed] = [p for p in streamed.state["parts"] if "thoughtSignature" in p]
    assert signed["thoughtSignature"] == fake.signatures[-1]
    assert len(fake.stream.sent[-1]) > 3  # it really came in pieces


async def test_both_paths_deliver_the_models_image_untouched(gemini: Router, fake: FakeGemini) -> None:
    plain = await gemini.generate(GenerateRequest("a lighthouse", model=PRO, seed=7))
    assert plain.images[0].data == fake.outputs[-1]
    assert fake.requests[-1].path.endswith(":generateContent")
    streamed = await gemini.generate(
        GenerateRequest("a lighthouse", model=PRO, seed=7, on_preview=Previews())
    )
    assert streamed.images[0].data == fake.outputs[-1]
    assert fake.requests[-1].path.endswith(":streamGenerateContent")
    assert (streamed.text, streamed.images[0].mime) == (plain.text, plain.images[0].mime)


@pytest.mark.parametrize(
    ("error", "kind", "text"),
    [
        (GeminiError(503, "UNAVAILABLE", "The model is overloaded."), ProviderUnavailable, "unavailable"),
        (
            GeminiError(
                429,
                "RESOURCE_EXHAUSTED",
                "Quota exceeded.",
                [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"}],
            ),
            RateLimited,
            "try again in 17 s",
        ),
    ],
)
async def test_an_error_event_mid_stream_is_the_typed_error_and_not_retried(
    gemini: Router, fake: FakeGemini, error: GeminiError, kind: type[Exception], text: str
) -> None:
    fake.stream.break_at("image", error=error)
    previews = Previews()
    with pytest.raises(kind, match=text):
        await gemini.generate(GenerateRequest("a lighthouse", model=PRO, on_preview=previews))
    assert fake.calls == 1  # an answer that had begun is never sent again
    assert len(previews.seen) <= 1


async def test_a_cut_connection_is_a_clear_error_not_a_hang(gemini: Router, fake: FakeGemini) -> None:
    fake.stream.break_at("image", how="cut")
    with pytest.raises(ProviderUnavailable, match="half-way"):
        async with asyncio.timeout(HANG):
            await gemini.generate(GenerateRequest("a lighthouse", model=NB2, on_preview=Previews()))
    assert fake.calls == 1


async def test_overload_before_the_answer_begins_is_retried(gemini: Router, fake: FakeGemini) -> None:
    fake.script("unavailable")
    result = await gemini.generate(GenerateRequest("a lighthouse", model=PRO, on_preview=Previews()))
    assert result.images[0].data == fake.outputs[-1]
    streams = [r for r in fake.requests if r.path == STREAM_PATH]
    assert len(streams) == 2 and fake.calls == 2


async def test_a_refused_prompt_streams_as_the_same_typed_error(gemini: Router, fake: FakeGemini) -> None:
    fake.script("image_safety")
    with pytest.raises(Exception, match="safety filters") as streamed:
        await gemini.generate(GenerateRequest("a lighthouse", model=PRO, on_preview=Previews()))
    fake.script("image_safety")
    with pytest.raises(Exception, match="safety filters") as plain:
        await gemini.generate(GenerateRequest("a lighthouse", model=PRO))
    assert (type(streamed.value), str(streamed.value)) == (type(plain.value), str(plain.value))


async def test_a_server_that_ignores_alt_sse_sends_a_json_array_read_the_same(
    gemini: Router, fake: FakeGemini
) -> None:
    provider = provider_of(gemini)
    previews = Previews()
    body = build_body(GenerateRequest("a lighthouse", model=PRO, on_preview=previews), KNOWN_MODELS[PRO])
    url = f"{fake.base_url}{STREAM_PATH}"  # no ?alt=sse: Google answers one JSON array of chunks
    merged = await stream_answer(provider, url, body, previews)
    [answer] = fake.stream.answers
    same_result(provider.read_answer(merged, PRO), provider.read_answer(answer, PRO))
    assert fake.requests[-1].query == {}


async def test_25_flash_never_streams(gemini: Router, fake: FakeGemini) -> None:
    previews = Previews()
    result = await gemini.generate(GenerateRequest("a lighthouse", model=FLASH, on_preview=previews))
    assert result.images
    [request] = fake.requests
    assert request.path == f"/v1beta/models/{FLASH}:generateContent"
    assert "thinkingConfig" not in (request.json or {})["generationConfig"]
    assert previews.seen == [] and fake.stream.answers == []


def test_pieces_of_a_text_join_whichever_carries_the_signature() -> None:
    for first, second in (({"thoughtSignature": "s"}, {}), ({}, {"thoughtSignature": "s"})):
        answer = StreamedAnswer()
        for piece in (
            {"text": ""},
            {"text": "Here is ", **first},
            {"text": "your image", **second},
            {"text": ""},
        ):
            answer.add({"candidates": [{"content": {"parts": [piece]}}]})
        answer.add({"candidates": [{"finishReason": "STOP"}]})
        assert answer.complete
        assert answer.merged()["candidates"][0]["content"]["parts"] == [
            {"text": "Here is your image", "thoughtSignature": "s"}
        ]


def test_two_signed_texts_stay_two_parts_and_a_thought_is_not_joined_to_text() -> None:
    answer = StreamedAnswer()
    parts = [
        {"text": "**Plan**", "thought": True},
        {"text": "a", "thoughtSignature": "1"},
        {"text": "b", "thoughtSignature": "2"},
    ]
    for part in parts:
        answer.add({"candidates": [{"content": {"parts": [part]}}]})
    assert answer.merged()["candidates"][0]["content"]["parts"] == parts
    assert not answer.complete  # no finish reason yet: a stream ending here was cut


def test_the_summary_is_the_bold_title_else_the_first_line() -> None:
    assert thought_summary("**Composing the scene**\n\nI am planning the layout.") == "Composing the scene"
    assert thought_summary("\n  Planning   the layout\nthen light") == "Planning the layout"
    assert thought_summary("   ") is None
    assert len(thought_summary("x" * 500) or "") == 200


def test_events_are_cut_at_blank_lines_whatever_the_pieces() -> None:
    stream = b'data: {"a": 1}\r\n\r\n: keep-alive\r\n\r\ndata: {"b":\r\ndata: 2}\r\n\r\ndata: {"c"'
    for size in (1, 3, 7, len(stream)):
        splitter = SseSplitter()
        events = [e for n in range(0, len(stream), size) for e in splitter.feed(stream[n : n + size])]
        assert [event_data(e) for e in events] == [b'{"a": 1}', None, b'{"b":\n2}']
        assert splitter.unfinished
