"""Gemini request bodies go on the wire as JSON bytes encoded off the event loop: the bytes the fake
Gemini receives are exactly what json.dumps of the body would have made, and aiohttp is never asked
to serialise a Gemini body itself (it would do that on the event loop)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.providers.base import GenerateRequest, ImageData, InputImage, Preview, Turn
from bot.providers.gemini import map_error
from bot.providers.gemini_body import HARM_CATEGORIES, MB, draft_body
from bot.providers.http import HttpClient, Limits, RetryPolicy
from bot.providers.models import KNOWN_MODELS
from bot.providers.registry import build_router
from bot.providers.router import Router
from bot.providers.slices import WHOLE_UP_TO
from tests.fakes.imagegen import make_image
from tests.fakes.providers import FakeGemini, Fault, RecordedRequest
from tests.fakes.settings import make_settings

KEY = "gk-body-bytes"
PRO = "gemini-3-pro-image-preview"
#: Quotes, a backslash, non-ASCII and a look-alike of an image placeholder: all escaped as JSON.
PROMPT = 'put the "three" of them \\ in one “room” — image-0-0 "image-0-0"'
REFS = [make_image(64 + 8 * n, 64, "PNG", color=(40 * n, 90, 200)) for n in range(3)]
EARLIER = make_image(96, 96, "JPEG", color=(10, 20, 30))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def conversation() -> list[Turn]:
    """A user turn, then a model turn with a signed text and a signed image."""
    recorded = [
        {"text": "Here is your cat", "thoughtSignature": "sig-text"},
        {"image": 0, "thoughtSignature": "sig-img"},
    ]
    return [
        Turn("user", "a cat"),
        Turn("model", "Here is your cat", (ImageData(EARLIER, "image/jpeg"),), {"parts": recorded}),
    ]


def asked(**options: Any) -> GenerateRequest:
    """A Pro request with history, three references and most options set."""
    return GenerateRequest(
        PROMPT,
        model=PRO,
        images=[InputImage(data, "image/png", name=f"ref{n}") for n, data in enumerate(REFS)],
        aspect_ratio="4:5",
        resolution="2K",
        history=conversation(),
        safety="strict",
        search=True,
        **options,
    )


def expected(seed: int | None = None) -> dict[str, Any]:
    """The body of asked(), written out by hand in the order the builder writes it."""
    config: dict[str, Any] = {
        "responseModalities": ["TEXT", "IMAGE"],
        "imageConfig": {"aspectRatio": "4:5", "imageSize": "2K"},
    }
    if seed is not None:
        config["seed"] = seed
    references = [{"inlineData": {"mimeType": "image/png", "data": b64(data)}} for data in REFS]
    model_parts = [
        {"text": "Here is your cat", "thoughtSignature": "sig-text"},
        {"inlineData": {"mimeType": "image/jpeg", "data": b64(EARLIER)}, "thoughtSignature": "sig-img"},
    ]
    return {
        "contents": [
            {"role": "user", "parts": [{"text": "a cat"}]},
            {"role": "model", "parts": model_parts},
            {"role": "user", "parts": [{"text": PROMPT}, *references]},
        ],
        "generationConfig": config,
        "safetySettings": [{"category": c, "threshold": "BLOCK_LOW_AND_ABOVE"} for c in HARM_CATEGORIES],
        "tools": [{"googleSearch": {}}],
    }


def as_json_dumps(request: RecordedRequest) -> bool:
    """Whether the raw body is byte for byte what json.dumps (aiohttp's `json=`) makes of its meaning."""
    return request.body == json.dumps(request.json).encode()


@pytest.fixture
async def fake() -> AsyncIterator[FakeGemini]:
    async with FakeGemini(api_key=KEY) as server:
        yield server


@pytest.fixture
async def serialised() -> AsyncIterator[tuple[aiohttp.ClientSession, list[Any]]]:
    """A session whose JSON serialiser notes each value aiohttp is asked to serialise (`json=`)."""
    asked_to: list[Any] = []

    def dumps(value: Any) -> str:
        asked_to.append(value)
        return json.dumps(value)

    async with aiohttp.ClientSession(json_serialize=dumps) as session:
        yield session, asked_to


@pytest.fixture
def gemini(fake: FakeGemini, serialised: tuple[aiohttp.ClientSession, list[Any]]) -> Callable[..., Router]:
    """A router on the noting session, the fake Gemini its provider (entry options as given)."""

    def build(**entry: Any) -> Router:
        base = {"name": "google", "kind": "gemini", "base_url": fake.base_url, "api_key": KEY}
        return build_router(make_settings({**base, **entry}), serialised[0])

    return build


def generations(fake: FakeGemini) -> list[RecordedRequest]:
    return [r for r in fake.requests if r.path.endswith(":generateContent")]


# --- the bytes on the wire -----------------------------------------------------------------------------


async def test_history_and_references_arrive_as_the_body_they_mean(
    gemini: Callable[..., Router], fake: FakeGemini, serialised: tuple[Any, list[Any]]
) -> None:
    result = await gemini().generate(asked())
    assert result.images
    [sent] = generations(fake)
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.json == expected()
    assert sent.body == json.dumps(expected()).encode()  # what the old `json=` path put on the wire
    assert serialised[1] == []  # aiohttp never serialised a body on the event loop


async def test_each_seeded_image_has_its_own_seed_and_the_same_images(
    gemini: Callable[..., Router], fake: FakeGemini, serialised: tuple[Any, list[Any]]
) -> None:
    result = await gemini().generate(asked(seed=41, count=2))
    assert len(result.images) == 2
    seeds = [(r.json or {})["generationConfig"]["seed"] for r in generations(fake)]
    assert sorted(seeds) == [41, 42]
    for request, seed in zip(generations(fake), seeds, strict=True):
        assert request.body == json.dumps(expected(seed)).encode()
    assert serialised[1] == []


async def test_the_bytes_are_the_drafts_encoding_and_measure_as_sent(
    gemini: Callable[..., Router], fake: FakeGemini
) -> None:
    draft = draft_body(asked(), KNOWN_MODELS[PRO])
    encoded = draft.encode()
    assert json.loads(encoded) == expected() == draft.filled()
    assert sum(len(piece) for piece in draft.pieces()) == len(encoded)
    await gemini().generate(asked())
    assert generations(fake)[0].body == encoded  # the placeholders' random part never reaches the wire


async def test_files_replace_the_largest_image_in_the_bytes(
    gemini: Callable[..., Router], fake: FakeGemini, serialised: tuple[Any, list[Any]]
) -> None:
    smaller, larger = (make_image(side, side, "PNG", color=(9, 9, 9), noisy=True) for side in (400, 420))
    request = asked(seed=7)  # 0.64 and 0.71 MB of base64 more: over 1 MB until the larger moves
    request.images += [InputImage(data, "image/png", name="big") for data in (smaller, larger)]
    result = await gemini(inline_limit_mb=1).generate(request)
    assert result.images
    [sent] = generations(fake)
    assert len(sent.body) <= 1 * MB and as_json_dumps(sent)
    [upload] = fake.files.uploads
    assert upload.data == larger
    want = expected(seed=7)
    want["contents"][2]["parts"] += [
        {"inlineData": {"mimeType": "image/png", "data": b64(smaller)}},
        {"fileData": {"mimeType": "image/png", "fileUri": f"{fake.base_url}/v1beta/{upload.name}"}},
    ]
    assert sent.json == want
    assert serialised[1] == []


async def test_a_streamed_call_sends_the_same_bytes(
    gemini: Callable[..., Router], fake: FakeGemini, serialised: tuple[Any, list[Any]]
) -> None:
    shown: list[Preview] = []

    async def preview(p: Preview) -> None:
        shown.append(p)

    result = await gemini().generate(asked(on_preview=preview))
    assert result.images
    [sent] = [r for r in fake.requests if r.path.endswith(":streamGenerateContent")]
    assert sent.headers["Content-Type"] == "application/json"
    want = expected()
    want["generationConfig"]["thinkingConfig"] = {"includeThoughts": True}
    assert sent.body == json.dumps(want).encode()
    assert serialised[1] == []


async def test_a_307_resends_the_bytes(gemini: Callable[..., Router], fake: FakeGemini) -> None:
    fake.script(Fault("redirect", status=307), Fault("redirect", status=308))
    assert (await gemini().generate(asked())).images
    first, second, third = generations(fake)
    assert first.body == second.body == third.body == json.dumps(expected()).encode()


# --- the shared HTTP client ----------------------------------------------------------------------------


async def echo(request: web.Request) -> web.Response:
    """/to?status=N redirects to /end; /end answers what it received."""
    if request.path == "/to":
        return web.Response(status=int(request.query["status"]), headers={"Location": "/end"})
    body = await request.read()
    seen = {"method": request.method, "type": request.headers.get("Content-Type"), "body": body.decode()}
    return web.json_response(seen)


@pytest.fixture
async def hops() -> AsyncIterator[str]:
    """A server that redirects and echoes, its base URL."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def post(session: aiohttp.ClientSession, url: str, **payload: Any) -> Any:
    """One POST through the real HttpClient, no retries."""
    http = HttpClient(session, RetryPolicy(attempts=1))
    return await http.request_json(
        "POST", url, provider="p", mapper=map_error("p"), limits=Limits(), **payload
    )


@pytest.mark.parametrize(
    ("status", "kept"), [(301, False), (302, False), (303, False), (307, True), (308, True)]
)
async def test_encoded_bodies_follow_the_redirect_rules(
    session: aiohttp.ClientSession, hops: str, status: int, kept: bool
) -> None:
    body = b'{"prompt": "a lamp"}'
    seen = await post(session, f"{hops}/to?status={status}", body=body)
    if kept:
        assert seen == {"method": "POST", "type": "application/json", "body": body.decode()}
    else:
        assert seen["method"] == "GET" and seen["body"] == "" and seen["type"] is None


async def test_one_payload_at_a_time(session: aiohttp.ClientSession, hops: str) -> None:
    with pytest.raises(ValueError, match="one of"):
        await post(session, f"{hops}/end", body=b"{}", json_body={})


async def test_a_big_body_sent_in_slices_arrives_whole_with_its_length(
    gemini: Callable[..., Router], fake: FakeGemini
) -> None:
    big = [make_image(700, 700, "PNG", noisy=True) for _ in range(3)]  # ~4.4 MB of base64 in all
    request = asked()
    request.images = [InputImage(data, "image/png", name=f"big{n}") for n, data in enumerate(big)]
    assert (await gemini().generate(request)).images
    [sent] = generations(fake)
    assert len(sent.body) > 4 * WHOLE_UP_TO  # big enough to go out in slices
    assert sent.headers["Content-Length"] == str(len(sent.body))  # slices, yet not sent chunked
    assert "Transfer-Encoding" not in sent.headers
    assert sent.body == json.dumps(sent.json).encode()
    parts = (sent.json or {})["contents"][-1]["parts"][1:]
    assert [base64.b64decode(p["inlineData"]["data"]) for p in parts] == big
