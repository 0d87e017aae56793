"""The Gemini interface against a fake generateContent server over real HTTP."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import AsyncIterator, Callable

import pytest
from PIL import Image

from bot.errors import (
    AuthFailed,
    BadRequest,
    NoImageReturned,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    SafetyBlocked,
)
from bot.providers.base import GenerateRequest, ImageData, InputImage, Turn
from bot.providers.router import Router
from tests.fakes.imagegen import make_image
from tests.fakes.providers import FakeGemini, Fault

KEY = "gk-test-secret"


@pytest.fixture
async def fake() -> AsyncIterator[FakeGemini]:
    async with FakeGemini(api_key=KEY) as server:
        yield server


@pytest.fixture
def gemini(fake: FakeGemini, router_for: Callable[..., Router]) -> Router:
    return router_for({"name": "google", "kind": "gemini", "base_url": fake.base_url, "api_key": KEY})


def dims(image: ImageData) -> tuple[int, int]:
    with Image.open(io.BytesIO(image.data)) as im:
        return im.size


def ratio_of(image: ImageData) -> float:
    w, h = dims(image)
    return w / h


async def test_flash_16_9_sends_image_config_and_returns_png(gemini: Router, fake: FakeGemini) -> None:
    result = await gemini.generate(GenerateRequest("a red apple", aspect_ratio="16:9"))
    [image] = result.images
    assert image.mime == "image/png"
    assert ratio_of(image) == pytest.approx(16 / 9, rel=0.03)
    [req] = fake.requests
    assert req.path == "/v1beta/models/gemini-2.5-flash-image:generateContent"
    assert req.headers["x-goog-api-key"] == KEY
    config = req.json["generationConfig"]
    assert config["imageConfig"] == {"aspectRatio": "16:9"}  # no imageSize for 2.5 Flash
    assert config["responseModalities"] == ["TEXT", "IMAGE"]
    assert req.json["contents"] == [{"role": "user", "parts": [{"text": "a red apple"}]}]
    assert result.text  # 2.5 Flash says something with its image


async def test_pro_2k_returns_jpeg_skips_thoughts_and_keeps_signature(
    gemini: Router, fake: FakeGemini
) -> None:
    result = await gemini.generate(
        GenerateRequest("a lighthouse", model="gemini-3-pro-image-preview", resolution="2K")
    )
    [image] = result.images  # the interim thought image is skipped
    assert image.mime == "image/jpeg"
    assert dims(image) == (2048, 2048)
    assert fake.requests[-1].json["generationConfig"]["imageConfig"] == {"imageSize": "2K"}
    signed = [p for p in result.state["parts"] if "thoughtSignature" in p]
    assert signed and signed[0]["image"] == 0


async def test_31_flash_half_k_is_sent_as_512(gemini: Router, fake: FakeGemini) -> None:
    request = GenerateRequest(
        "tiny", model="gemini-3.1-flash-image-preview", resolution="0.5K", aspect_ratio="8:1"
    )
    result = await gemini.generate(request)
    assert fake.requests[-1].json["generationConfig"]["imageConfig"] == {
        "aspectRatio": "8:1",
        "imageSize": "512",
    }
    assert ratio_of(result.images[0]) == pytest.approx(8, rel=0.05)


async def test_multi_turn_replays_signatures_byte_exact(gemini: Router, fake: FakeGemini) -> None:
    first = await gemini.generate(GenerateRequest("a cat", model="gemini-3-pro-image-preview"))
    history = [
        Turn("user", "a cat"),
        Turn("model", first.text, tuple(first.images), first.state),
    ]
    ref = make_image(64, 64, "PNG", color=(1, 2, 3))
    await gemini.generate(
        GenerateRequest(
            "make it purple",
            model="gemini-3-pro-image-preview",
            history=history,
            images=[InputImage(ref, "image/png")],
        )
    )
    sent = fake.requests[-1].json["contents"]
    assert [c["role"] for c in sent] == ["user", "model", "user"]
    original = fake.requests[0]  # what the fake answered is not recorded; compare via state
    assert original.path.endswith("gemini-3-pro-image-preview:generateContent")
    model_parts = sent[1]["parts"]
    image_parts = [p for p in model_parts if "inlineData" in p]
    expected_sig = next(p["thoughtSignature"] for p in first.state["parts"] if "image" in p)
    assert image_parts[0]["thoughtSignature"] == expected_sig
    assert base64.b64decode(image_parts[0]["inlineData"]["data"]) == first.images[0].data
    assert sent[2]["parts"][0] == {"text": "make it purple"}
    assert base64.b64decode(sent[2]["parts"][1]["inlineData"]["data"]) == ref


async def test_count_three_makes_three_calls(gemini: Router, fake: FakeGemini) -> None:
    result = await gemini.generate(GenerateRequest("three pears", count=3))
    assert len(result.images) == 3 and fake.calls == 3
    assert len({i.data for i in result.images}) == 3


@pytest.mark.parametrize(
    ("request_", "match"),
    [
        (GenerateRequest("x", images=[InputImage(b"\x89PNG", "image/png")] * 4), "at most 3"),
        (GenerateRequest("x", model="gemini-3-pro-image-preview", aspect_ratio="8:1"), "8:1"),
        (GenerateRequest("x", resolution="4K"), "4K"),
        (GenerateRequest("   "), "empty"),
        (GenerateRequest("x", count=9), "1 to 4"),
    ],
)
async def test_limits_refused_before_sending(
    gemini: Router, fake: FakeGemini, request_: GenerateRequest, match: str
) -> None:
    with pytest.raises(BadRequest, match=match):
        await gemini.generate(request_)
    assert fake.calls == 0


@pytest.mark.parametrize(
    ("fault", "error", "reason"),
    [
        ("prompt_blocked", SafetyBlocked, "PROHIBITED_CONTENT"),
        ("image_safety", SafetyBlocked, "IMAGE_SAFETY"),
        ("image_safety_text", SafetyBlocked, "IMAGE_SAFETY"),
        ("prohibited_content", SafetyBlocked, "PROHIBITED_CONTENT"),
        ("safety", SafetyBlocked, "SAFETY"),
        ("recitation", SafetyBlocked, "RECITATION"),
        ("no_image", NoImageReturned, "NO_IMAGE"),
        ("text_only", NoImageReturned, "STOP"),
        ("max_tokens", NoImageReturned, "MAX_TOKENS"),
    ],
)
async def test_http_200_failures_are_typed(
    gemini: Router, fake: FakeGemini, fault: str, error: type[Exception], reason: str
) -> None:
    fake.script(fault)
    with pytest.raises(error) as caught:
        await gemini.generate(GenerateRequest("something"))
    assert caught.value.reason == reason  # type: ignore[attr-defined]
    assert reason in str(caught.value)
    assert fake.calls == 1  # never retried: the prompt is the problem


async def test_image_safety_carries_finish_message(gemini: Router, fake: FakeGemini) -> None:
    fake.script("image_safety")
    with pytest.raises(SafetyBlocked) as caught:
        await gemini.generate(GenerateRequest("something"))
    assert "Prohibited Use policy" in (caught.value.model_text or "")


async def test_text_only_carries_model_text(gemini: Router, fake: FakeGemini) -> None:
    fake.script(Fault("text_only", message="I would rather write a haiku."))
    with pytest.raises(NoImageReturned) as caught:
        await gemini.generate(GenerateRequest("something"))
    assert caught.value.model_text == "I would rather write a haiku."
    assert "haiku" in caught.value.user_message


async def test_bad_key_is_auth_failed_without_retry(
    fake: FakeGemini, router_for: Callable[..., Router]
) -> None:
    router = router_for({"name": "g", "kind": "gemini", "base_url": fake.base_url, "api_key": "wrong-key"})
    with pytest.raises(AuthFailed, match="API key") as caught:
        await router.generate(GenerateRequest("x"))
    assert "wrong-key" not in str(caught.value)
    assert fake.calls == 1


async def test_missing_key_is_auth_failed(fake: FakeGemini, router_for: Callable[..., Router]) -> None:
    router = router_for({"name": "g", "kind": "gemini", "base_url": fake.base_url})
    with pytest.raises(AuthFailed, match="denied"):
        await router.generate(GenerateRequest("x"))


async def test_rate_limit_retry_delay_from_body_then_success(gemini: Router, fake: FakeGemini) -> None:
    fake.script(Fault("rate_limited", retry_after=0.3))
    started = time.monotonic()
    result = await gemini.generate(GenerateRequest("x"))
    assert result.images and fake.calls == 2
    assert time.monotonic() - started >= 0.3  # honoured RetryInfo.retryDelay


async def test_rate_limit_exhausted_tells_when(gemini: Router, fake: FakeGemini) -> None:
    fake.script(*[Fault("rate_limited", retry_after=0.05)] * 3)
    with pytest.raises(RateLimited) as caught:
        await gemini.generate(GenerateRequest("x"))
    assert caught.value.retry_after == pytest.approx(0.05)
    assert fake.calls == 3


async def test_rate_limit_beyond_budget_gives_up_at_once(gemini: Router, fake: FakeGemini) -> None:
    fake.script(Fault("rate_limited", retry_after=3600))
    with pytest.raises(RateLimited, match="3600 s"):
        await gemini.generate(GenerateRequest("x"))
    assert fake.calls == 1


async def test_short_429_body_is_rate_limited(gemini: Router, fake: FakeGemini) -> None:
    fake.script(*["rate_limited_short"] * 3)
    with pytest.raises(RateLimited):
        await gemini.generate(GenerateRequest("x"))


@pytest.mark.parametrize("fault", ["server_error", "unavailable", "bad_gateway", "gateway_timeout", "reset"])
async def test_transient_failure_retried_then_success(gemini: Router, fake: FakeGemini, fault: str) -> None:
    fake.script(fault)
    result = await gemini.generate(GenerateRequest("x"))
    assert len(result.images) == 1 and fake.calls == 2


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("server_error", ProviderUnavailable),
        ("unavailable", ProviderUnavailable),
        ("gateway_timeout", ProviderTimeout),
    ],
)
async def test_transient_failure_exhausted(
    gemini: Router, fake: FakeGemini, fault: str, error: type[Exception]
) -> None:
    fake.script(fault, fault, fault)
    with pytest.raises(error):
        await gemini.generate(GenerateRequest("x"))
    assert fake.calls == 3


async def test_hang_times_out(fake: FakeGemini, router_for: Callable[..., Router]) -> None:
    router = router_for(
        {"name": "g", "kind": "gemini", "base_url": fake.base_url, "api_key": KEY, "timeout": 0.3}
    )
    fake.script(Fault("hang", hang=5))
    with pytest.raises(ProviderTimeout, match="did not answer"):
        await router.generate(GenerateRequest("x"))


@pytest.mark.parametrize(
    ("fault", "match"),
    [("malformed", "malformed"), ("html", "HTML"), ("truncated_base64", "damaged|truncated")],
)
async def test_broken_bodies(gemini: Router, fake: FakeGemini, fault: str, match: str) -> None:
    fake.script(fault)
    with pytest.raises(ProviderUnavailable, match=match):
        await gemini.generate(GenerateRequest("x"))


async def test_unknown_model_is_bad_request(gemini: Router, fake: FakeGemini) -> None:
    router_model = "gemini-9-imaginary"
    provider = gemini.providers[0]
    provider.config.models.append(router_model)
    with pytest.raises(BadRequest, match="not found"):
        await gemini.generate(GenerateRequest("x", model=router_model))
