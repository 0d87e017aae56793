"""Large results over real HTTP: decoded while they download, within the result-bytes budget, and base64
images read straight from the answer's bytes.

A small host on 127.0.0.1 serves the bodies (whole, in pieces, or cut off mid-way); the provider layer
reads them as it would a provider's.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from PIL import Image

from bot.errors import InputError, ProviderUnavailable
from bot.imaging import ByteBudget, intake
from bot.imaging.codec import decode
from bot.imaging.fit import FIT_MAX_PIXELS
from bot.providers.base import GenerateRequest
from bot.providers.http import HttpClient, Limits
from bot.providers.retry import RetryPolicy
from bot.providers.router import Router
from bot.providers.wire import Base64Blob, loads
from tests.botenv import eventually

GEMINI_PATH = "/v1beta/models/gemini-2.5-flash-image:generateContent"
OPENAI_PATH = "/v1/images/generations"
PIECE = 16 * 1024


def noise_png(size: tuple[int, int]) -> bytes:
    """An incompressible PNG about as large as its pixels."""
    image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=0)
    return buffer.getvalue()


PNG = noise_png((400, 300))  # 360 KB: past the 256 KiB over which bodies are read as large ones


class Host:
    """Serves /img.png whole (in pieces), /cut.png cut off half-way, and JSON answers per path."""

    def __init__(self) -> None:
        self.answers: dict[str, bytes] = {}
        self.started = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.path in ("/img.png", "/cut.png"):
            return await self._image(request, cut=request.path == "/cut.png")
        return web.Response(body=self.answers[request.path], content_type="application/json")

    async def _image(self, request: web.Request, *, cut: bool) -> web.StreamResponse:
        """The PNG in small pieces; cut: the connection drops after half of the announced bytes."""
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        response.content_length = len(PNG)
        await response.prepare(request)
        self.started.set()
        end = len(PNG) // 2 if cut else len(PNG)
        for start in range(0, end, PIECE):
            await response.write(PNG[start : min(start + PIECE, end)])
        if cut:
            assert request.transport is not None
            request.transport.close()
            return response
        await response.write_eof()
        return response

    async def __aenter__(self) -> Host:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


@pytest.fixture
async def host() -> AsyncIterator[Host]:
    async with Host() as server:
        yield server


def client(session: aiohttp.ClientSession) -> HttpClient:
    """The shared HTTP client, with one attempt per call."""
    return HttpClient(session, RetryPolicy(attempts=1))


async def download(session: aiohttp.ClientSession, host: Host, path: str) -> bytes:
    """Fetch a result image from the host (its own host is trusted, as a provider's is)."""
    image = await client(session).download(
        host.base_url + path, provider="p", limits=Limits(), trusted_hosts={"127.0.0.1"}
    )
    return image.data


# --- decoded while downloading -----------------------------------------------------------------------


async def test_a_result_that_must_shrink_is_decoded_as_it_downloads(
    session: aiohttp.ClientSession, host: Host
) -> None:
    with intake(None, decode_over=len(PNG) // 2) as results:
        body = await download(session, host, "/img.png")
        assert body == PNG
        [ready] = await results.decoded([body])
    whole = decode(PNG, "image", FIT_MAX_PIXELS)
    assert ready is not None and ready.image.tobytes() == whole.image.tobytes()


async def test_a_result_that_fits_is_not_decoded(session: aiohttp.ClientSession, host: Host) -> None:
    with intake(None, decode_over=len(PNG)) as results:
        body = await download(session, host, "/img.png")
        assert results.decodes == [] and await results.decoded([body]) == [None]


async def test_a_download_cut_short_fails_clearly_and_stops_its_decode(
    session: aiohttp.ClientSession, host: Host
) -> None:
    with intake(None, decode_over=1) as results:
        with pytest.raises(ProviderUnavailable, match="downloading the image from p failed"):
            await download(session, host, "/cut.png")
        [started] = results.decodes
        # The decode ends, with an error, instead of waiting for bytes that never come.
        with pytest.raises((InputError, asyncio.CancelledError)):
            await asyncio.wrap_future(started.future)


async def test_a_large_download_waits_for_its_share_of_the_budget(
    session: aiohttp.ClientSession, host: Host
) -> None:
    budget = ByteBudget(len(PNG))
    with intake(budget, decode_over=None) as holder:
        await holder.reserve(len(PNG))  # another job holds every byte of the budget

        async def job() -> bytes:
            with intake(budget, decode_over=None):
                return await download(session, host, "/img.png")

        waiting = asyncio.ensure_future(job())
        await eventually(lambda: bool(budget._waiters), what="the download waits for the budget")
        assert not waiting.done()
    assert await waiting == PNG  # the holder's job ended: its bytes went to the waiting download
    assert budget.used == 0


# --- base64 read straight from the answer's bytes ----------------------------------------------------


def test_long_base64_values_stay_in_the_body() -> None:
    encoded = base64.b64encode(PNG).decode()
    body = json.dumps(
        {"data": [{"b64_json": f"data:image/png;base64,{encoded}", "note": "x"}], "data2": encoded}
    ).encode()
    parsed = loads(body)
    blob = parsed["data"][0]["b64_json"]
    assert isinstance(blob, Base64Blob) and blob.decode() == PNG
    assert parsed["data"][0]["note"] == "x" and parsed["data2"] == encoded  # other keys: plain strings


def test_escaped_base64_is_parsed_as_a_string() -> None:
    encoded = base64.b64encode(PNG).decode()
    body = json.dumps({"data": encoded}).replace("/", "\\/").encode()  # some servers escape slashes
    assert loads(body) == {"data": encoded}


def gemini_answer(data: str) -> bytes:
    """A generateContent answer with one inline image."""
    part = {"inlineData": {"mimeType": "image/png", "data": data}}
    return json.dumps({"candidates": [{"content": {"parts": [{"text": "here"}, part]}}]}).encode()


def router(router_for: Callable[..., Router], host: Host, kind: str) -> Router:
    """One provider of this kind on the host."""
    entry: dict[str, Any] = {"name": "p", "kind": kind, "base_url": host.base_url, "api_key": "k"}
    if kind == "openai-images":
        entry["models"] = ["nano-banana"]
    return router_for(entry)


async def test_gemini_reads_a_large_inline_image_from_the_body(
    host: Host, router_for: Callable[..., Router]
) -> None:
    host.answers[GEMINI_PATH] = gemini_answer(base64.b64encode(PNG).decode())
    result = await router(router_for, host, "gemini").generate(GenerateRequest("a cat"))
    assert [image.data for image in result.images] == [PNG] and result.text == "here"


async def test_openai_reads_a_large_b64_json_with_a_data_prefix(
    host: Host, router_for: Callable[..., Router]
) -> None:
    item = {"b64_json": "data:image/png;base64," + base64.b64encode(PNG).decode()}
    host.answers[OPENAI_PATH] = json.dumps({"data": [item]}).encode()
    result = await router(router_for, host, "openai-images").generate(GenerateRequest("a cat"))
    assert [image.data for image in result.images] == [PNG]


async def test_damaged_base64_in_a_large_answer_is_a_clear_error(
    host: Host, router_for: Callable[..., Router]
) -> None:
    damaged = base64.b64encode(PNG).decode()
    host.answers[GEMINI_PATH] = gemini_answer(damaged[:1000] + "*" + damaged[1001:])
    with pytest.raises(ProviderUnavailable, match="damaged image data"):
        await router(router_for, host, "gemini").generate(GenerateRequest("a cat"))
