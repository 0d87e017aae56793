"""The OpenAI-style images interface (relay and aikit hosts) against fakes over real HTTP."""

from __future__ import annotations

import io
import time
from collections.abc import AsyncIterator, Callable

import pytest
from PIL import Image

from bot.errors import (
    AuthFailed,
    BadRequest,
    NoImageReturned,
    OutOfCredits,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    SafetyBlocked,
)
from bot.providers.base import GenerateRequest, ImageData, InputImage, UpscaleRequest
from bot.providers.router import Router
from tests.fakes.imagegen import make_image
from tests.fakes.providers import FakeOpenAIImages, Fault

KEY = "sk-relay-secret"


@pytest.fixture
async def relay() -> AsyncIterator[FakeOpenAIImages]:
    async with FakeOpenAIImages(api_key=KEY, flavor="relay") as server:
        yield server


@pytest.fixture
async def aikit() -> AsyncIterator[FakeOpenAIImages]:
    async with FakeOpenAIImages(flavor="aikit") as server:
        yield server


def entry(fake: FakeOpenAIImages, **extra: object) -> dict[str, object]:
    base: dict[str, object] = {
        "name": "relay",
        "kind": "openai-images",
        "base_url": fake.base_url,
        "models": ["nano-banana-2", "nano-banana"],
    }
    return {**base, **extra}


def dims(image: ImageData) -> tuple[int, int]:
    with Image.open(io.BytesIO(image.data)) as im:
        return im.size


@pytest.mark.parametrize("response_format", ["url", "b64_json"])
async def test_generation_with_ratio_and_size(
    relay: FakeOpenAIImages, router_for: Callable[..., Router], response_format: str
) -> None:
    router = router_for(entry(relay, api_key=KEY, response_format=response_format))
    result = await router.generate(
        GenerateRequest("a red apple", aspect_ratio="16:9", resolution="2K", count=2)
    )
    assert len(result.images) == 2
    w, h = dims(result.images[0])
    assert w / h == pytest.approx(16 / 9, rel=0.03) and w > 2000
    create = next(r for r in relay.requests if r.path == "/v1/images/generations")
    assert create.headers["Authorization"] == f"Bearer {KEY}"
    assert create.json["aspect_ratio"] == "16:9" and create.json["image_size"] == "2K"
    assert create.json["n"] == 2 and create.json["response_format"] == response_format
    downloads = [r for r in relay.requests if r.method == "GET"]
    assert len(downloads) == (2 if response_format == "url" else 0)


async def test_no_image_size_for_single_size_model(
    relay: FakeOpenAIImages, router_for: Callable[..., Router]
) -> None:
    router = router_for(entry(relay, api_key=KEY))
    await router.generate(GenerateRequest("x", model="nano-banana"))
    assert "image_size" not in relay.requests[0].json


async def test_edit_uploads_repeated_image_parts(
    relay: FakeOpenAIImages, router_for: Callable[..., Router]
) -> None:
    router = router_for(entry(relay, api_key=KEY))
    refs = [
        make_image(300, 200, "PNG", color=(9, 9, 9)),
        make_image(64, 64, "JPEG", color=(1, 1, 1)),
    ]
    result = await router.generate(
        GenerateRequest(
            "put a hat on it",
            images=[InputImage(refs[0], "image/png"), InputImage(refs[1], "image/jpeg")],
            aspect_ratio="3:2",
        )
    )
    edit = next(r for r in relay.requests if r.path == "/v1/images/edits")
    assert [f[0] for f in edit.files] == ["image", "image"]
    assert [f[3] for f in edit.files] == refs
    assert edit.form["prompt"] == ["put a hat on it"] and edit.form["aspect_ratio"] == ["3:2"]
    w, h = dims(result.images[0])
    assert w / h == pytest.approx(1.5, rel=0.03)


@pytest.mark.parametrize("factor", [2, 4])
async def test_upscale_endpoint(
    aikit: FakeOpenAIImages, router_for: Callable[..., Router], factor: int
) -> None:
    router = router_for(
        entry(aikit, name="aikit", models=["nano-banana"], upscale=True, response_format="b64_json")
    )
    source = make_image(200, 100, "PNG", color=(5, 6, 7))
    result = await router.upscale(UpscaleRequest(InputImage(source, "image/png"), factor))
    assert result.provider == "aikit"
    assert dims(result.images[0]) == (200 * factor, 100 * factor)  # data: prefix handled
    up = next(r for r in aikit.requests if r.path == "/v1/images/upscale")
    assert up.form["upscale_factor"] == [f"x{factor}"]
    assert "Authorization" not in up.headers


async def test_upscale_falls_back_to_local_when_host_fails(
    aikit: FakeOpenAIImages, router_for: Callable[..., Router]
) -> None:
    router = router_for(entry(aikit, name="aikit", models=["nano-banana"], upscale=True))
    aikit.script("gateway_timeout", "gateway_timeout", "gateway_timeout")
    source = make_image(100, 50, "PNG", color=(5, 6, 7))
    result = await router.upscale(UpscaleRequest(InputImage(source, "image/png"), 2))
    assert result.provider == "local" and dims(result.images[0]) == (200, 100)


async def test_check_lists_models(aikit: FakeOpenAIImages, router_for: Callable[..., Router]) -> None:
    router = router_for(entry(aikit, name="aikit", models=["nano-banana"]))
    assert "nano-banana" in await router.providers[0].check()


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("moderation_blocked", SafetyBlocked),
        ("content_policy", SafetyBlocked),
        ("bad_request", BadRequest),
        ("not_found", BadRequest),
        ("insufficient_quota", OutOfCredits),
        ("empty_data", NoImageReturned),
        ("url_404", ProviderUnavailable),
        ("url_not_image", ProviderUnavailable),
        ("malformed", ProviderUnavailable),
        ("html", ProviderUnavailable),
    ],
)
async def test_failures_are_typed_and_not_retried(
    relay: FakeOpenAIImages, router_for: Callable[..., Router], fault: str, error: type[Exception]
) -> None:
    router = router_for(entry(relay, api_key=KEY))
    relay.script(fault)
    with pytest.raises(error):
        await router.generate(GenerateRequest("x"))
    assert relay.calls == 1


async def test_bad_key_does_not_echo_the_key(
    relay: FakeOpenAIImages, router_for: Callable[..., Router]
) -> None:
    router = router_for(entry(relay, api_key="sk-wrong-one"))
    with pytest.raises(AuthFailed) as caught:
        await router.generate(GenerateRequest("x"))
    assert "sk-wrong" not in str(caught.value)


async def test_retry_after_header_honoured(
    relay: FakeOpenAIImages, router_for: Callable[..., Router]
) -> None:
    router = router_for(entry(relay, api_key=KEY))
    relay.script(Fault("rate_limited", retry_after=1))
    started = time.monotonic()
    result = await router.generate(GenerateRequest("x"))
    assert result.images and relay.calls == 2
    assert time.monotonic() - started >= 1.0


async def test_rate_limit_exhausted(relay: FakeOpenAIImages, router_for: Callable[..., Router]) -> None:
    router = router_for(entry(relay, api_key=KEY), retry_attempts=2)
    relay.script(Fault("rate_limited", retry_after=0), Fault("rate_limited", retry_after=0))
    with pytest.raises(RateLimited):
        await router.generate(GenerateRequest("x"))
    assert relay.calls == 2


@pytest.mark.parametrize("fault", ["server_error", "gateway_timeout", "reset"])
async def test_transient_then_success(
    relay: FakeOpenAIImages, router_for: Callable[..., Router], fault: str
) -> None:
    router = router_for(entry(relay, api_key=KEY))
    relay.script(fault)
    assert (await router.generate(GenerateRequest("x"))).images
    assert relay.calls == 2


async def test_gateway_timeout_exhausted(relay: FakeOpenAIImages, router_for: Callable[..., Router]) -> None:
    router = router_for(entry(relay, api_key=KEY))
    relay.script(*["gateway_timeout"] * 3)
    with pytest.raises(ProviderTimeout):
        await router.generate(GenerateRequest("x"))


async def test_hang_times_out(relay: FakeOpenAIImages, router_for: Callable[..., Router]) -> None:
    router = router_for(entry(relay, api_key=KEY, timeout=0.3))
    relay.script(Fault("hang", hang=5))
    with pytest.raises(ProviderTimeout):
        await router.generate(GenerateRequest("x"))


async def test_fallback_to_next_provider_when_first_is_down(
    relay: FakeOpenAIImages, aikit: FakeOpenAIImages, router_for: Callable[..., Router]
) -> None:
    router = router_for(
        entry(relay, api_key=KEY, models=["nano-banana"]),
        entry(aikit, name="aikit", models=["nano-banana"]),
    )
    relay.script(*["server_error"] * 3)
    result = await router.generate(GenerateRequest("x"))
    assert result.provider == "aikit"


async def test_no_fallback_on_safety_block(
    relay: FakeOpenAIImages, aikit: FakeOpenAIImages, router_for: Callable[..., Router]
) -> None:
    router = router_for(
        entry(relay, api_key=KEY, models=["nano-banana"]),
        entry(aikit, name="aikit", models=["nano-banana"]),
    )
    relay.script("moderation_blocked")
    with pytest.raises(SafetyBlocked):
        await router.generate(GenerateRequest("x"))
    assert aikit.calls == 0


async def test_result_url_on_a_private_address_is_refused(
    relay: FakeOpenAIImages, router_for: Callable[..., Router]
) -> None:
    router = router_for(entry(relay, api_key=KEY))
    relay.script("url_private")
    with pytest.raises(ProviderUnavailable, match="unsafe image address"):
        await router.generate(GenerateRequest("x"))
    assert relay.calls == 1
