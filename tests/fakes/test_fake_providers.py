"""Tests for the fake provider servers themselves, driven with a plain aiohttp client."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from PIL import Image

from tests.fakes.imagegen import dims_for, make_image, nearest_ratio, sniff_mime
from tests.fakes.providers import (
    FakeGemini,
    FakeNBPro,
    FakeOpenAIImages,
    FakeTask,
    Fault,
    RecordedRequest,
)

PRO = "gemini-3-pro-image-preview"
FLASH = "gemini-2.5-flash-image"
FLASH31 = "gemini-3.1-flash-image-preview"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp client session."""
    async with aiohttp.ClientSession() as session:
        yield session


def decode(data: bytes) -> tuple[str, tuple[int, int]]:
    """Fully decode image bytes; return (format, size)."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return str(image.format), image.size


def b64(data: bytes) -> str:
    """Base64 text."""
    return base64.b64encode(data).decode()


def gemini_body(prompt: str = "a cat", ratio: str | None = None, size: str | None = None) -> dict:
    """A minimal camelCase generateContent body."""
    image_config = {k: v for k, v in (("aspectRatio", ratio), ("imageSize", size)) if v}
    config: dict[str, Any] = {"responseModalities": ["TEXT", "IMAGE"]}
    if image_config:
        config["imageConfig"] = image_config
    return {"contents": [{"role": "user", "parts": [{"text": prompt}]}], "generationConfig": config}


async def post_gemini(
    http: aiohttp.ClientSession, fake: FakeGemini, body: Any, model: str = PRO, key: str = "gk-test"
) -> tuple[int, Any]:
    """POST generateContent and return (status, parsed JSON)."""
    url = f"{fake.base_url}/v1beta/models/{model}:generateContent"
    async with http.post(url, json=body, headers={"x-goog-api-key": key}) as resp:
        return resp.status, await resp.json()


def final_image(body: dict) -> bytes:
    """The last non-thought inlineData of the first candidate."""
    parts = body["candidates"][0]["content"]["parts"]
    images = [p for p in parts if "inlineData" in p and not p.get("thought")]
    return base64.b64decode(images[-1]["inlineData"]["data"])


# -- imagegen -----------------------------------------------------------------------------


def test_dims_table() -> None:
    """1K table, multipliers and the computed extreme ratios."""
    assert dims_for("16:9", "2K") == (2688, 1536)
    assert dims_for("21:9", "4K") == (6144, 2688)
    assert dims_for("1:1", "512") == dims_for("1:1", "0.5K") == (512, 512)
    assert dims_for() == (1024, 1024)
    assert dims_for("1:4", "1K") == (512, 2048)
    assert dims_for("8:1", "1K") == (2944, 368)
    with pytest.raises(ValueError):
        dims_for("7:3", "1K")
    with pytest.raises(ValueError):
        dims_for("1:1", "3K")


def test_make_image_formats_and_noise() -> None:
    """Real, decodable images; cached solid ones, large noisy ones."""
    png = make_image(40, 30, color=(1, 2, 3))
    assert decode(png) == ("PNG", (40, 30))
    assert make_image(40, 30, color=(1, 2, 3)) is png
    assert decode(make_image(40, 30, "jpeg"))[0] == "JPEG"
    assert sniff_mime(make_image(8, 8, "webp")) == "image/webp"
    assert len(make_image(200, 200, noisy=True)) > 200 * 200 * 3
    assert nearest_ratio(1000, 560) == "16:9"


# -- Gemini -------------------------------------------------------------------------------


async def test_gemini_pro_success_16x9_2k(http: aiohttp.ClientSession) -> None:
    """Pro answers JPEG of the requested size, a thought text part and a thoughtSignature."""
    async with FakeGemini(api_key="gk-test") as fake:
        status, body = await post_gemini(http, fake, gemini_body(ratio="16:9", size="2K"))
    assert status == 200
    candidate = body["candidates"][0]
    assert candidate["finishReason"] == "STOP"
    parts = candidate["content"]["parts"]
    assert parts[0]["thought"] is True and "text" in parts[0]
    assert parts[-1]["thoughtSignature"]
    assert parts[-1]["inlineData"]["mimeType"] == "image/jpeg"
    assert decode(final_image(body)) == ("JPEG", (2688, 1536))
    assert {"usageMetadata", "modelVersion", "responseId"} <= body.keys()
    assert fake.calls == 1 and len(fake.outputs) == 1


async def test_gemini_flash_text_and_png(http: aiohttp.ClientSession) -> None:
    """2.5 Flash answers a text part and a PNG; two results differ."""
    async with FakeGemini() as fake:
        _, first = await post_gemini(http, fake, gemini_body(ratio="9:16"), model=FLASH)
        _, second = await post_gemini(http, fake, gemini_body(ratio="9:16"), model=FLASH)
    parts = first["candidates"][0]["content"]["parts"]
    assert parts[0]["text"].startswith("Here is your image")
    assert decode(final_image(first)) == ("PNG", (768, 1344))
    assert final_image(first) != final_image(second)


async def test_gemini_auth(http: aiohttp.ClientSession) -> None:
    """Missing key -> 403, wrong key -> 400 API_KEY_INVALID, ?key= accepted."""
    async with FakeGemini(api_key="gk-test") as fake:
        url = f"{fake.base_url}/v1beta/models/{PRO}:generateContent"
        async with http.post(url, json=gemini_body()) as resp:
            missing = resp.status, await resp.json()
        wrong = await post_gemini(http, fake, gemini_body(), key="nope")
        async with http.post(url, params={"key": "gk-test"}, json=gemini_body()) as resp:
            assert resp.status == 200
    assert missing[0] == 403 and missing[1]["error"]["status"] == "PERMISSION_DENIED"
    assert wrong[0] == 400
    error = wrong[1]["error"]
    assert error["message"] == "API key not valid. Please pass a valid API key."
    assert error["details"][0]["reason"] == "API_KEY_INVALID"


async def test_gemini_snake_case_and_input_ratio(http: aiohttp.ClientSession) -> None:
    """snake_case fields are accepted; output ratio defaults to the input image's."""
    source = make_image(1184, 864, "JPEG")
    body = {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "make it night"},
                    {"inline_data": {"mime_type": "image/jpeg", "data": b64(source)}},
                ],
            }
        ],
        "generation_config": {
            "response_modalities": ["IMAGE"],
            "image_config": {"image_size": "1K"},
            "thinking_config": {"include_thoughts": False},
        },
        "safety_settings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
    }
    async with FakeGemini() as fake:
        status, answer = await post_gemini(http, fake, body, model=FLASH31)
        recorded = fake.requests[0]
    assert status == 200
    assert decode(final_image(answer))[1] == (1184, 864)
    assert recorded.json == body
    assert recorded.headers["X-Goog-Api-Key"] == "gk-test"


async def test_gemini_unknown_field_rejected(http: aiohttp.ClientSession) -> None:
    """Unknown names give the proto-JSON error with a BadRequest field violation."""
    body = gemini_body()
    body["generationConfig"]["imageConfig"] = {"size": "2K"}
    async with FakeGemini() as fake:
        status, answer = await post_gemini(http, fake, body)
    assert status == 400
    error = answer["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["message"] == (
        "Invalid JSON payload received. Unknown name \"size\" at 'generation_config.image_config':"
        " Cannot find field."
    )
    assert error["details"][0]["fieldViolations"][0]["field"] == "generation_config.image_config"


async def test_gemini_model_limits(http: aiohttp.ClientSession) -> None:
    """Per-model sizes, ratios and image counts; unknown models 404."""
    img = {"inlineData": {"mimeType": "image/png", "data": b64(make_image(16, 16))}}
    four = gemini_body()
    four["contents"][0]["parts"] += [img] * 4
    async with FakeGemini() as fake:
        assert (await post_gemini(http, fake, gemini_body(size="2K"), model=FLASH))[0] == 400
        assert (await post_gemini(http, fake, four, model=FLASH))[0] == 400
        assert (await post_gemini(http, fake, four, model="gemini-3-pro-image"))[0] == 200
        assert (await post_gemini(http, fake, gemini_body(ratio="1:8"), model=PRO))[0] == 400
        status, body = await post_gemini(http, fake, gemini_body(ratio="1:8", size="512"), FLASH31)
        assert status == 200 and decode(final_image(body))[1] == (184, 1472)
        status, body = await post_gemini(http, fake, gemini_body(), model="gemini-9")
    assert status == 404 and body["error"]["status"] == "NOT_FOUND"
    assert "models/gemini-9 is not found" in body["error"]["message"]


async def test_gemini_bad_inline_image(http: aiohttp.ClientSession) -> None:
    """inlineData must be base64 of a real image."""
    body = gemini_body()
    part = {"inlineData": {"mimeType": "image/png", "data": b64(b"not an image at all")}}
    body["contents"][0]["parts"].append(part)
    async with FakeGemini() as fake:
        status, answer = await post_gemini(http, fake, body)
    assert status == 400 and answer["error"]["status"] == "INVALID_ARGUMENT"


async def test_gemini_multiturn_counts_last_user_turn(http: aiohttp.ClientSession) -> None:
    """Images in earlier turns do not count against the 2.5 limit of 3."""
    img = {"inlineData": {"mimeType": "image/png", "data": b64(make_image(16, 16))}}
    contents = [
        {"role": "user", "parts": [{"text": "draw"}, img, img, img]},
        {"role": "model", "parts": [{"text": "Here"}, img]},
        {"role": "user", "parts": [{"text": "again"}, img]},
    ]
    async with FakeGemini() as fake:
        status, _ = await post_gemini(http, fake, {"contents": contents}, model=FLASH)
        assert fake.requests[0].json["contents"] == contents
    assert status == 200


async def test_gemini_include_thoughts_interim_image(http: aiohttp.ClientSession) -> None:
    """includeThoughts adds a thought text and a smaller interim thought image."""
    body = gemini_body(ratio="1:1")
    body["generationConfig"]["thinkingConfig"] = {"includeThoughts": True}
    async with FakeGemini() as fake:
        _, answer = await post_gemini(http, fake, body, model=FLASH31)
    parts = answer["candidates"][0]["content"]["parts"]
    thought_images = [p for p in parts if p.get("thought") and "inlineData" in p]
    assert len(thought_images) == 1
    interim = base64.b64decode(thought_images[0]["inlineData"]["data"])
    assert decode(interim)[1] == (512, 512)
    assert decode(final_image(answer))[1] == (1024, 1024)


async def test_gemini_rate_limited_then_ok(http: aiohttp.ClientSession) -> None:
    """429 carries RetryInfo in the body and no Retry-After header; the queue then drains."""
    async with FakeGemini() as fake:
        fake.script(Fault("rate_limited", retry_after=0.2), "ok")
        url = f"{fake.base_url}/v1beta/models/{PRO}:generateContent"
        async with http.post(url, json=gemini_body()) as resp:
            assert resp.status == 429 and "Retry-After" not in resp.headers
            error = (await resp.json())["error"]
        assert (await post_gemini(http, fake, gemini_body()))[0] == 200
        assert (await post_gemini(http, fake, gemini_body()))[0] == 200
    assert error["status"] == "RESOURCE_EXHAUSTED"
    assert error["details"][-1]["retryDelay"] == "0.2s"
    assert "Please retry in 0.2s." in error["message"]


async def test_gemini_content_faults(http: aiohttp.ClientSession) -> None:
    """HTTP 200 answers without an image."""
    async with FakeGemini() as fake:
        fake.script("image_safety", "prompt_blocked", "no_image", "text_only", "recitation")
        answers = [(await post_gemini(http, fake, gemini_body()))[1] for _ in range(5)]
    safety, blocked, no_image, text_only, recitation = answers
    assert safety["candidates"][0]["finishReason"] == "IMAGE_SAFETY"
    assert safety["candidates"][0]["content"] == {}
    assert "finishMessage" in safety["candidates"][0]
    assert "candidates" not in blocked
    assert blocked["promptFeedback"]["blockReason"] == "PROHIBITED_CONTENT"
    assert no_image["candidates"] == [{"finishReason": "NO_IMAGE", "index": 0}]
    assert text_only["candidates"][0]["content"]["parts"] == [
        {"text": "I can't draw that, but here is a poem."}
    ]
    assert recitation["candidates"][0]["finishReason"] == "RECITATION"


async def test_gemini_transport_faults(http: aiohttp.ClientSession) -> None:
    """reset drops the connection, malformed/html are 200s that are not JSON, hang times out."""
    async with FakeGemini() as fake:
        fake.script("reset", "malformed", "html", Fault("hang", hang=5), "truncated_base64")
        url = f"{fake.base_url}/v1beta/models/{PRO}:generateContent"
        with pytest.raises(aiohttp.ClientConnectionError):
            async with http.post(url, json=gemini_body()) as resp:
                await resp.read()
        async with http.post(url, json=gemini_body()) as resp:
            assert resp.status == 200 and resp.content_type == "application/json"
            with pytest.raises(json.JSONDecodeError):
                json.loads(await resp.text())
        async with http.post(url, json=gemini_body()) as resp:
            assert resp.status == 200 and resp.content_type == "text/html"
        with pytest.raises(TimeoutError):
            timeout = aiohttp.ClientTimeout(total=0.3)
            async with http.post(url, json=gemini_body(), timeout=timeout) as resp:
                await resp.read()
        _, body = await post_gemini(http, fake, gemini_body())
        with pytest.raises(OSError):
            decode(final_image(body))
        assert fake.calls == 5


# -- OpenAI-style (relay / aikit) ---------------------------------------------------------


async def test_relay_generate_url_16x9_2k(http: aiohttp.ClientSession) -> None:
    """nano-banana-2 16:9 2K returns a URL that serves the right PNG."""
    payload = {
        "model": "nano-banana-2",
        "prompt": "  sunset  ",
        "aspect_ratio": "16:9",
        "image_size": "2K",
    }
    headers = {"Authorization": "Bearer sk-relay"}
    async with FakeOpenAIImages(api_key="sk-relay") as fake:
        url = f"{fake.base_url}/v1/images/generations"
        async with http.post(url, json=payload, headers=headers) as resp:
            assert resp.status == 200
            body = await resp.json()
        item = body["data"][0]
        async with http.get(item["url"]) as resp:
            assert resp.content_type == "image/png"
            data = await resp.read()
        paths = [r.path for r in fake.requests]
    assert item["revised_prompt"] == "sunset" and isinstance(body["created"], int)
    assert decode(data) == ("PNG", (2688, 1536))
    assert item["url"].startswith(fake.base_url + "/images/") and item["url"].endswith("_generate.png")
    assert paths == ["/v1/images/generations", item["url"][len(fake.base_url) :]]


async def test_relay_auth(http: aiohttp.ClientSession) -> None:
    """Missing or wrong Bearer keys get the 401 invalid_api_key body."""
    payload = {"model": "nano-banana", "prompt": "x"}
    async with FakeOpenAIImages(api_key="sk-relay") as fake:
        url = f"{fake.base_url}/v1/images/generations"
        for headers in ({}, {"Authorization": "Bearer sk-wrong"}):
            async with http.post(url, json=payload, headers=headers) as resp:
                assert resp.status == 401
                error = (await resp.json())["error"]
                assert error["code"] == "invalid_api_key"
                assert error["message"].startswith("Incorrect API key provided")
                assert error["type"] == "invalid_request_error" and error["param"] is None


async def test_relay_multipart_edit_keeps_all_images(http: aiohttp.ClientSession) -> None:
    """Repeated image / image[] parts are all recorded; output follows the first input's ratio."""
    form = aiohttp.FormData()
    form.add_field("model", "nano-banana")
    form.add_field("prompt", "add a hat")
    form.add_field("image", make_image(768, 1344), filename="a.png", content_type="image/png")
    form.add_field("image[]", make_image(64, 64, "JPEG"), filename="b.jpg", content_type="image/jpeg")
    form.add_field("response_format", "b64_json")
    async with FakeOpenAIImages() as fake:
        async with http.post(f"{fake.base_url}/v1/images/edits", data=form) as resp:
            assert resp.status == 200
            body = await resp.json()
        rec: RecordedRequest = fake.requests[0]
    assert [(name, fn, ct) for name, fn, ct, _ in rec.files] == [
        ("image", "a.png", "image/png"),
        ("image[]", "b.jpg", "image/jpeg"),
    ]
    assert rec.form["prompt"] == ["add a hat"]
    assert decode(base64.b64decode(body["data"][0]["b64_json"])) == ("PNG", (768, 1344))


async def test_openai_edit_requires_image(http: aiohttp.ClientSession) -> None:
    """An edit without image is a 400."""
    async with FakeOpenAIImages() as fake:
        url = f"{fake.base_url}/v1/images/edits"
        async with http.post(url, json={"model": "nano-banana", "prompt": "x"}) as resp:
            assert resp.status == 400
            assert (await resp.json())["error"]["message"] == "Missing required parameter: image"


async def test_aikit_generate_b64_n2_jpeg(http: aiohttp.ClientSession) -> None:
    """aikit: no auth, n images, raw base64, output_format honoured."""
    payload = {
        "prompt": "banana",
        "n": 2,
        "aspect_ratio": "4:3",
        "output_format": "jpeg",
        "response_format": "b64_json",
    }
    async with (
        FakeOpenAIImages(api_key="ignored", flavor="aikit") as fake,
        http.post(f"{fake.base_url}/v1/images/generations", json=payload) as resp,
    ):
        assert resp.status == 200
        data = (await resp.json())["data"]
    assert len(data) == 2 and not data[0]["b64_json"].startswith("data:")
    assert decode(base64.b64decode(data[0]["b64_json"])) == ("JPEG", (1184, 864))


async def test_aikit_upscale_and_relay_has_none(http: aiohttp.ClientSession) -> None:
    """Upscale multiplies the input size and prefixes b64 with a data URL; relay 404s."""
    source = "data:image/png;base64," + b64(make_image(300, 200))
    payload = {"image": source, "upscale_factor": "x4", "response_format": "b64_json"}
    async with FakeOpenAIImages(flavor="aikit") as fake:
        url = f"{fake.base_url}/v1/images/upscale"
        async with http.post(url, json=payload) as resp:
            item = (await resp.json())["data"][0]
        async with http.post(url, json={**payload, "upscale_factor": "x3"}) as resp:
            assert resp.status == 400
            message = (await resp.json())["error"]["message"]
    prefix = "data:image/jpeg;base64,"
    assert item["b64_json"].startswith(prefix)
    assert decode(base64.b64decode(item["b64_json"][len(prefix) :])) == ("JPEG", (1200, 800))
    assert message == "Invalid upscale_factor: must be one of x2, x4"
    async with (
        FakeOpenAIImages() as relay,
        http.post(f"{relay.base_url}/v1/images/upscale", json=payload) as resp,
    ):
        assert resp.status == 404
        assert "error" in await resp.json()


async def test_aikit_bad_image_is_500(http: aiohttp.ClientSession) -> None:
    """aikit answers undecodable image input with 500 api_error."""
    async with FakeOpenAIImages(flavor="aikit") as fake:
        url = f"{fake.base_url}/v1/images/edits"
        async with http.post(url, json={"prompt": "x", "image": "@@@not base64@@@"}) as resp:
            assert resp.status == 500
            error = (await resp.json())["error"]
    assert error == {
        "message": "Invalid base64 data",
        "type": "api_error",
        "param": None,
        "code": None,
    }


async def test_openai_faults(http: aiohttp.ClientSession) -> None:
    """rate_limited sets Retry-After; url_404 / url_not_image / empty_data behave."""
    payload = {"model": "nano-banana", "prompt": "x"}
    async with FakeOpenAIImages() as fake:
        fake.script(Fault("rate_limited", retry_after=0.2), "url_404", "url_not_image")
        fake.script("empty_data", "moderation_blocked")
        url = f"{fake.base_url}/v1/images/generations"
        async with http.post(url, json=payload) as resp:
            assert resp.status == 429 and resp.headers["Retry-After"] == "1"
            assert (await resp.json())["error"]["code"] == "rate_limit_exceeded"
        async with http.post(url, json=payload) as resp:
            gone = (await resp.json())["data"][0]["url"]
        async with http.get(gone) as resp:
            assert resp.status == 404
            assert (await resp.json())["error"]["message"] == "Image not found or expired"
        async with http.post(url, json=payload) as resp:
            fake_png = (await resp.json())["data"][0]["url"]
        async with http.get(fake_png) as resp:
            assert resp.content_type == "image/png"
            assert sniff_mime(await resp.read()) is None
        async with http.post(url, json=payload) as resp:
            assert (await resp.json())["data"] == []
        async with http.post(url, json=payload) as resp:
            assert resp.status == 400
            assert (await resp.json())["error"]["code"] == "moderation_blocked"


async def test_openai_models_list(http: aiohttp.ClientSession) -> None:
    """GET /v1/models lists the flavor's models."""
    async with (
        FakeOpenAIImages(flavor="aikit") as fake,
        http.get(f"{fake.base_url}/v1/models") as resp,
    ):
        ids = [m["id"] for m in (await resp.json())["data"]]
    assert ids == ["nano-banana", "imagen-4.0-upscale-preview"]


# -- nano-banana-pro.net ------------------------------------------------------------------


async def test_nbpro_success_and_auth(http: aiohttp.ClientSession) -> None:
    """JSON generate 16:9 2k; plain-string 401s."""
    payload = {"prompt": "garden", "size": "2k", "aspectRatio": "16:9"}
    async with FakeNBPro(api_key="sk-nb") as fake:
        url = f"{fake.base_url}/api/ai/nano-banana/generate"
        async with http.post(url, json=payload, headers={"Authorization": "Bearer sk-nb"}) as resp:
            assert resp.status == 200
            body = await resp.json()
        async with http.get(body["images"][0]["url"]) as resp:
            data = await resp.read()
        async with http.post(url, json=payload) as resp:
            assert resp.status == 401 and isinstance((await resp.json())["error"], str)
        async with http.post(url, json=payload, headers={"Authorization": "Bearer sk-x"}) as resp:
            assert resp.status == 401
    assert body["model"] == "nano-banana-2-2k" and isinstance(body["created"], int)
    assert decode(data) == ("PNG", (2688, 1536))


async def test_nbpro_validation_and_faults(http: aiohttp.ClientSession) -> None:
    """Bad ratio and oversized upload are 400; out_of_credits is 402."""
    async with FakeNBPro() as fake:
        url = f"{fake.base_url}/api/ai/nano-banana/generate"
        async with http.post(url, json={"prompt": "x", "aspectRatio": "4:5"}) as resp:
            assert resp.status == 400
        form = aiohttp.FormData()
        form.add_field("prompt", "x")
        big = make_image(1024, 1024, noisy=True)
        form.add_field("image", big, filename="big.png", content_type="image/png")
        async with http.post(url, data=form) as resp:
            assert resp.status == 400
            assert "2.5MB" in (await resp.json())["error"]
        form = aiohttp.FormData()
        form.add_field("prompt", "x")
        form.add_field("image", make_image(896, 1152), filename="p.png", content_type="image/png")
        async with http.post(url, data=form) as resp:
            assert resp.status == 200
        fake.script("out_of_credits")
        async with http.post(url, json={"prompt": "x"}) as resp:
            assert resp.status == 402
            assert await resp.json() == {"error": "Insufficient credits"}
        assert fake.calls == 4


# -- Vtrix task API -----------------------------------------------------------------------


def task_body(prompt: str = "apple", **params: Any) -> dict:
    """A create-task body."""
    return {"model": "nano_banana_2", "input": [{"params": {"prompt": prompt, **params}}]}


async def create_task(http: aiohttp.ClientSession, fake: FakeTask, body: Any) -> tuple[int, Any]:
    """POST a create call."""
    headers = {"Authorization": "Bearer vk"}
    async with http.post(f"{fake.base_url}/model/v1/generation", json=body, headers=headers) as r:
        return r.status, await r.json()


async def poll_task(http: aiohttp.ClientSession, fake: FakeTask, task_id: str) -> tuple[int, Any]:
    """GET a task."""
    url = f"{fake.base_url}/model/v1/generation/task/{task_id}"
    async with http.get(url, headers={"Authorization": "Bearer vk"}) as resp:
        return resp.status, await resp.json()


async def test_task_lifecycle(http: aiohttp.ClientSession) -> None:
    """in_progress -> pending -> processing -> completed with a downloadable image."""
    async with FakeTask(api_key="vk") as fake:
        status, task = await create_task(http, fake, task_body(aspect_ratio="16:9", resolution="2K"))
        assert status == 200 and task["status"] == "in_progress" and task["progress"] == 0.0
        seen = [(await poll_task(http, fake, task["id"]))[1] for _ in range(3)]
        async with http.get(seen[-1]["output"][0]["content"][0]["url"]) as resp:
            data = await resp.read()
        again = (await poll_task(http, fake, task["id"]))[1]
        missing = await poll_task(http, fake, "task_nope")
        assert fake.creates == 1 and fake.polls == 5
    assert [s["status"] for s in seen] == ["pending", "processing", "completed"]
    assert seen[-1]["usage"]["completion_tokens"] == 1290 and "metadata" in seen[-1]
    assert again == seen[-1]
    assert decode(data) == ("PNG", (2688, 1536))
    assert missing[0] == 404


async def test_task_failures(http: aiohttp.ClientSession) -> None:
    """The three failure shapes of a finished task."""
    async with FakeTask() as fake:
        fake.polls_to_complete = 0
        fake.script("failed_string", "failed_object", "failed_numeric")
        errors = []
        for _ in range(3):
            _, task = await create_task(http, fake, task_body())
            errors.append((await poll_task(http, fake, task["id"]))[1])
    assert [e["status"] for e in errors] == ["failed"] * 3
    assert errors[0]["error"] == "Internal generation error"
    assert errors[1]["error"] == {"code": "005001095", "error_message": "Internal generation error"}
    assert errors[2]["error"] == {"code": 5001096, "message": "Result parsing error"}


async def test_task_create_faults(http: aiohttp.ClientSession) -> None:
    """completed_on_create, no_id, out_of_credits, poll_server_error, never_completes."""
    async with FakeTask(api_key="vk") as fake:
        fake.script("completed_on_create", "no_id", "out_of_credits")
        fake.script("poll_server_error", "never_completes")
        _, done = await create_task(http, fake, task_body())
        _, no_id = await create_task(http, fake, task_body())
        credits = await create_task(http, fake, task_body())
        _, flaky = await create_task(http, fake, task_body())
        flaky_polls = [(await poll_task(http, fake, flaky["id"]))[0] for _ in range(4)]
        _, stuck = await create_task(http, fake, task_body())
        stuck_polls = [(await poll_task(http, fake, stuck["id"]))[1] for _ in range(5)]
    assert done["status"] == "completed" and done["output"][0]["content"][0]["type"] == "image"
    assert "id" not in no_id
    assert credits == (
        402,
        {
            "status": {"code": 402, "message": "Insufficient credits", "error_code": 40201},
            "data": None,
        },
    )
    assert flaky_polls == [500, 200, 200, 200]
    assert {p["status"] for p in stuck_polls} == {"in_progress"}
    assert fake.creates == 5


async def test_task_validation_and_auth(http: aiohttp.ClientSession) -> None:
    """Too many / non-http image_urls, long prompts, bad ratios and keys are rejected."""
    async with FakeTask(api_key="vk") as fake:
        four = task_body(image_urls=[f"https://x/{i}.png" for i in range(4)])
        assert (await create_task(http, fake, four))[0] == 400
        assert (await create_task(http, fake, task_body(image_urls=["ftp://x"])))[0] == 400
        assert (await create_task(http, fake, task_body("p" * 2501)))[0] == 400
        assert (await create_task(http, fake, task_body(aspect_ratio="2:1")))[0] == 400
        assert (await create_task(http, fake, task_body(resolution="8K")))[0] == 400
        ok = task_body(image_urls=["https://x/a.webp"], aspect_ratio="1:8", resolution="0.5K")
        assert (await create_task(http, fake, ok))[0] == 200
        url = f"{fake.base_url}/model/v1/generation"
        async with http.post(url, json=task_body()) as resp:
            assert resp.status == 401
            assert await resp.json() == {"message": "Invalid API key"}
        fake.script("rate_limited")
        status, body = await create_task(http, fake, task_body())
    assert (status, body) == (429, {"message": "Too many requests"})
