"""Requests over the inline limit: the largest images go through the Files API (the real provider code
against the fake Gemini's upload protocol), cached per key and image, uploaded again when gone."""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from bot.errors import BadRequest
from bot.providers.base import GenerateRequest, ImageData, InputImage, Turn
from bot.providers.gemini_body import MB, json_size, sized_body
from bot.providers.gemini_files import FileCache, FileRef
from bot.providers.models import KNOWN_MODELS
from bot.providers.pacing import ON_SEND
from bot.providers.router import Router
from tests.fakes.imagegen import make_image
from tests.fakes.providers import FakeGemini, RecordedRequest

KEY = "gk-files-one"
OTHER = "gk-files-two"
PRO = "gemini-3-pro-image-preview"
PROMPT = "put the three of them in one picture"


def noise(side: int, seed: int) -> bytes:
    """An incompressible PNG (side² pixels, about 3 bytes each): its size is what the test needs."""
    return make_image(side, side, "PNG", color=(seed, seed, seed), noisy=True)


#: Three references of about 0.5 MB and a larger earlier result: 2.9 MB of base64 against a 1 MB limit.
REFS = [noise(420, n) for n in (1, 2, 3)]
HISTORY_IMAGE = noise(470, 4)


def request(refs: list[bytes] = REFS, history: bool = True) -> GenerateRequest:
    """A Pro request with the references, after a signed model turn carrying an image."""
    turns = [
        Turn("user", "a cat"),
        Turn(
            "model",
            None,
            (ImageData(HISTORY_IMAGE, "image/png"),),
            {"parts": [{"image": 0, "thoughtSignature": "sig-history"}]},
        ),
    ]
    return GenerateRequest(
        PROMPT,
        model=PRO,
        images=[InputImage(data, "image/png", name=f"ref{n}") for n, data in enumerate(refs)],
        history=turns if history else [],
    )


@pytest.fixture
async def fake() -> AsyncIterator[FakeGemini]:
    async with FakeGemini(api_keys=[KEY, OTHER]) as server:
        yield server


@pytest.fixture
def gemini(fake: FakeGemini, router_for: Callable[..., Router]) -> Router:
    entry = {"name": "google", "kind": "gemini", "base_url": fake.base_url, "api_key": KEY}
    return router_for({**entry, "inline_limit_mb": 1})


def generations(fake: FakeGemini) -> list[RecordedRequest]:
    """The generateContent requests the fake received, in order."""
    return [r for r in fake.requests if r.path.endswith(":generateContent")]


def file_parts(body: Any) -> list[dict[str, Any]]:
    """Every fileData part of a generateContent body."""
    return [p for c in body["contents"] for p in c["parts"] if "fileData" in p]


def inline_images(body: Any) -> list[bytes]:
    """The bytes of every inlineData part of a generateContent body."""
    parts = [p for c in body["contents"] for p in c["parts"] if "inlineData" in p]
    return [base64.b64decode(p["inlineData"]["data"]) for p in parts]


# --- over the limit ------------------------------------------------------------------------------------


async def test_the_largest_images_go_as_files_and_the_body_fits(gemini: Router, fake: FakeGemini) -> None:
    everything = sum(len(base64.b64encode(i)) for i in [*REFS, HISTORY_IMAGE])
    assert everything > 2 * MB  # inline, the body could never fit in 1 MB
    result = await gemini.generate(request())
    assert result.images  # delivered
    [sent] = generations(fake)
    assert len(sent.body) <= 1 * MB
    uploaded = [u.data for u in fake.files.uploads]
    assert len(uploaded) == 3 and HISTORY_IMAGE in uploaded  # the largest first, history included
    assert all(u.key == KEY and u.mime == "image/png" for u in fake.files.uploads)
    body: dict[str, Any] = sent.json or {}
    assert len(file_parts(body)) == 3
    # The earlier model image is a file now, still signed; its bytes are what was uploaded.
    model_turn = body["contents"][1]
    [signed] = model_turn["parts"]
    assert signed["thoughtSignature"] == "sig-history" and "fileData" in signed
    names = {u.name.removeprefix("files/"): u.data for u in fake.files.uploads}
    assert names[signed["fileData"]["fileUri"].rsplit("/", 1)[1]] == HISTORY_IMAGE
    # What stayed inline and what went as files add up to exactly the request's images.
    assert sorted([*inline_images(sent.json), *uploaded]) == sorted([*REFS, HISTORY_IMAGE])
    # The fake read the files: it counted three images in the user turn (258 tokens each).
    assert result.usage["promptTokenCount"] == len(PROMPT) // 4 + 3 * 258


async def test_the_turn_is_left_as_it_was(gemini: Router, fake: FakeGemini) -> None:
    asked = request()
    await gemini.generate(asked)
    assert [i.data for i in asked.images] == REFS
    assert asked.history[1].images[0].data == HISTORY_IMAGE
    assert asked.history[1].state == {"parts": [{"image": 0, "thoughtSignature": "sig-history"}]}


def test_the_size_is_measured_as_sent() -> None:
    spec = KNOWN_MODELS[PRO]
    fits = sized_body(request(), spec, 100 * MB, 200)
    assert not fits.moves and fits.size == json_size(fits.body)
    sized = sized_body(request(), spec, 1 * MB, 200)
    assert sized.size <= 1 * MB and len(sized.moves) == 3


def test_the_cache_is_bounded_and_forgets_files_about_to_expire() -> None:
    now = [1000.0]
    cache = FileCache(size=2, clock=lambda: now[0])

    def ref(name: str) -> FileRef:
        return FileRef(f"files/{name}", f"https://x/v1beta/files/{name}", "image/png", now[0] + 7200)

    cache.put(("k", "a"), ref("a"))
    cache.put(("k", "b"), ref("b"))
    assert cache.get(("k", "a"))  # used: b is now the least recently used
    cache.put(("k", "c"), ref("c"))
    assert len(cache) == 2 and cache.get(("k", "b")) is None
    assert cache.get(("other key", "a")) is None  # per key
    now[0] += 3601  # under an hour left: not worth sending
    assert cache.get(("k", "a")) is None and cache.get(("k", "c")) is None


async def test_the_same_image_again_is_not_uploaded_again(gemini: Router, fake: FakeGemini) -> None:
    await gemini.generate(request())
    await gemini.generate(request())
    assert len(fake.files.uploads) == 3
    first, second = generations(fake)
    assert file_parts(first.json) == file_parts(second.json)


async def test_several_images_of_one_job_share_the_uploads(gemini: Router, fake: FakeGemini) -> None:
    asked = request()
    asked.count = 3
    result = await gemini.generate(asked)
    assert len(result.images) == 3 and len(generations(fake)) == 3
    assert len(fake.files.uploads) == 3


async def test_a_file_near_its_expiry_is_uploaded_again(gemini: Router, fake: FakeGemini) -> None:
    fake.files.ttl = 1800  # half an hour: less than the margin a cached file must have left
    await gemini.generate(request())
    await gemini.generate(request())
    assert len(fake.files.uploads) == 6
    assert len(generations(fake)) == 2  # never sent a file about to expire


async def test_a_file_deleted_on_the_server_is_uploaded_again(gemini: Router, fake: FakeGemini) -> None:
    await gemini.generate(request())
    fake.files.expire(fake.files.uploads[0].name)  # gone before the cache expected
    result = await gemini.generate(request())
    assert result.images
    refused, retried = generations(fake)[1:]
    assert len(fake.files.uploads) == 6  # the job's files, uploaded once more
    assert file_parts(refused.json) != file_parts(retried.json)
    await gemini.generate(request())  # the key was not rested or blamed: the next job just works
    assert len(fake.files.uploads) == 6 and len(generations(fake)) == 4


async def test_files_gone_on_every_try_fail_clearly(gemini: Router, fake: FakeGemini) -> None:
    await gemini.generate(request())
    fake.files.shift_clock(49 * 3600)  # the server's files all expire; the new ones too, below
    fake.files.ttl = -1
    with pytest.raises(BadRequest, match="no longer has an uploaded reference image"):
        await gemini.generate(request())
    assert len(generations(fake)) == 3  # one retry, not more


async def test_a_file_still_processing_is_waited_for(gemini: Router, fake: FakeGemini) -> None:
    fake.files.processing_polls = 2
    result = await gemini.generate(request())
    assert result.images
    polls = [r for r in fake.requests if r.method == "GET" and r.path.startswith("/v1beta/files/")]
    assert len(polls) == 3 * 3  # per file: PROCESSING twice, then ACTIVE


# --- keys ---------------------------------------------------------------------------------------------


async def test_the_upload_and_the_call_use_the_same_key(
    fake: FakeGemini, router_for: Callable[..., Router], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    entry = {"name": "google", "kind": "gemini", "base_url": fake.base_url, "api_keys": [KEY, OTHER]}
    router = router_for({**entry, "inline_limit_mb": 1})
    fake.script_for_key(KEY, "bad_key")  # the first key is refused: the job moves to the second
    result = await router.generate(request())
    assert result.images
    assert [u.key for u in fake.files.uploads] == [KEY] * 3 + [OTHER] * 3
    refused, sent = generations(fake)
    for call in (refused, sent):
        key = call.headers["x-goog-api-key"]
        owners = {u.name.removeprefix("files/"): u.key for u in fake.files.uploads}
        assert {owners[p["fileData"]["fileUri"].rsplit("/", 1)[1]] for p in file_parts(call.json)} == {key}
    assert KEY not in caplog.text and OTHER not in caplog.text


# --- small requests -----------------------------------------------------------------------------------


async def test_a_small_request_stays_inline(fake: FakeGemini, router_for: Callable[..., Router]) -> None:
    router = router_for({"name": "google", "kind": "gemini", "base_url": fake.base_url, "api_key": KEY})
    small = make_image(64, 64, "PNG", color=(9, 9, 9))
    result = await router.generate(
        GenerateRequest("a cat", model=PRO, images=[InputImage(small, "image/png")])
    )
    assert result.images
    assert not fake.files.uploads
    assert [r.path for r in fake.requests] == [f"/v1beta/models/{PRO}:generateContent"]
    assert inline_images(fake.requests[0].json) == [small]


async def test_the_default_limit_keeps_a_large_request_inline(
    fake: FakeGemini, router_for: Callable[..., Router]
) -> None:
    router = router_for({"name": "google", "kind": "gemini", "base_url": fake.base_url, "api_key": KEY})
    await router.generate(request())  # 2.9 MB: far under the default 20 MB
    assert not fake.files.uploads and not file_parts(generations(fake)[0].json)


# --- the fake's Files API, as Google documents it ----------------------------------------------------


async def start(session: aiohttp.ClientSession, fake: FakeGemini, length: int, key: str = KEY) -> str:
    """Open an upload session; return its URL."""
    headers = {
        "x-goog-api-key": key,
        "X-Goog-Upload-Protocol": "resumable",
        "X-Goog-Upload-Command": "start",
        "X-Goog-Upload-Header-Content-Length": str(length),
        "X-Goog-Upload-Header-Content-Type": "image/png",
    }
    body = {"file": {"display_name": "cat"}}
    async with session.post(f"{fake.base_url}/upload/v1beta/files", json=body, headers=headers) as resp:
        assert resp.status == 200 and resp.headers["X-Goog-Upload-Status"] == "active"
        return resp.headers["X-Goog-Upload-URL"]


async def send(
    session: aiohttp.ClientSession, url: str, data: bytes, offset: int, command: str
) -> tuple[int, Any, str]:
    """One upload command; (status, JSON or None, X-Goog-Upload-Status)."""
    headers = {"X-Goog-Upload-Offset": str(offset), "X-Goog-Upload-Command": command}
    async with session.post(url, data=data, headers=headers) as resp:
        body = await resp.json() if resp.content_type == "application/json" else None
        return resp.status, body, resp.headers.get("X-Goog-Upload-Status", "")


async def test_the_fake_upload_protocol(session: aiohttp.ClientSession, fake: FakeGemini) -> None:
    image = REFS[0]
    url = await start(session, fake, len(image))
    assert (await send(session, url, image, 5, "upload, finalize"))[0] == 400  # wrong offset
    assert (await send(session, url, image, 0, "finish"))[0] == 400  # no such command
    assert (await send(session, url, image[:100], 0, "upload"))[2] == "active"
    assert (await send(session, url, b"", 100, "finalize"))[0] == 400  # short of the announced length
    status, body, state = await send(session, url, image[100:], 100, "upload, finalize")
    assert (status, state) == (200, "final")
    file = body["file"]
    assert file["sizeBytes"] == str(len(image)) and file["state"] == "ACTIVE"
    assert file["uri"] == f"{fake.base_url}/v1beta/{file['name']}" and file["displayName"] == "cat"
    assert fake.files.uploads[0].data == image


async def test_the_fake_keeps_files_to_their_project(
    session: aiohttp.ClientSession, fake: FakeGemini
) -> None:
    url = await start(session, fake, len(REFS[0]))
    _, body, _ = await send(session, url, REFS[0], 0, "upload, finalize")
    resource = f"{fake.base_url}/v1beta/{body['file']['name']}"
    async with session.get(resource, headers={"x-goog-api-key": KEY}) as resp:
        assert resp.status == 200 and (await resp.json())["name"] == body["file"]["name"]
    async with session.get(resource, headers={"x-goog-api-key": OTHER}) as resp:
        assert resp.status == 403 and (await resp.json())["error"]["status"] == "PERMISSION_DENIED"
    part = {"fileData": {"mimeType": "image/png", "fileUri": body["file"]["uri"]}}
    generate = f"{fake.base_url}/v1beta/models/{PRO}:generateContent"
    payload = {"contents": [{"role": "user", "parts": [{"text": "x"}, part]}]}
    for key, status in ((OTHER, 403), (KEY, 200)):
        async with session.post(generate, json=payload, headers={"x-goog-api-key": key}) as resp:
            assert resp.status == status
    bad = {"contents": [{"role": "user", "parts": [{"text": "x"}, {"fileData": {"fileUri": "gs://b/x"}}]}]}
    async with session.post(generate, json=bad, headers={"x-goog-api-key": KEY}) as resp:
        assert resp.status == 400
    async with session.delete(resource, headers={"x-goog-api-key": KEY}) as resp:
        assert resp.status == 200 and await resp.json() == {}
    async with session.post(generate, json=payload, headers={"x-goog-api-key": KEY}) as resp:
        assert resp.status == 403


async def test_a_job_counts_as_sent_only_when_the_call_after_its_uploads_leaves(
    gemini: Router, fake: FakeGemini
) -> None:
    uploaded_when_sent: list[int] = []  # Google bills the generateContent call, not the uploads
    told = ON_SEND.set(lambda: uploaded_when_sent.append(len(fake.files.uploads)))
    try:
        assert (await gemini.generate(request())).images
    finally:
        ON_SEND.reset(told)
    assert len(fake.files.uploads) == 3
    assert uploaded_when_sent == [3]  # told once, after the last upload: a cancel before is free
