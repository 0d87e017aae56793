"""Hostile and broken input through the fake Discord: a clear message, no charge, the bot keeps serving."""

from __future__ import annotations

import base64
import io
import struct
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from PIL import Image

from bot.app import NanoBot
from bot.providers.netguard import guarded_connector
from tests.botenv import linked_turn, running_bot, settled_usage
from tests.fakes.discord import FakeDiscord
from tests.fakes.imagegen import make_image
from tests.fakes.providers import FakeGemini, FakeOpenAIImages, FakeTask, Fault

KEY = "hostile-key"


@dataclass
class Env:
    discord: FakeDiscord
    gemini: FakeGemini
    bot: NanoBot

    async def settled_usage(self) -> tuple[int, int]:
        return await settled_usage(self.discord, self.bot)

    async def edit_with(self, data: bytes, name: str, content_type: str = "image/png") -> dict[str, Any]:
        attachment = self.discord.upload_attachment(data, name, content_type)
        inter = await self.discord.send_slash("edit", {"prompt": "make it blue", "image": attachment})
        return await inter.wait_done()

    async def still_serving(self) -> None:
        inter = await self.discord.send_slash("imagine", {"prompt": "an apple"})
        assert self.discord.files_of(await inter.wait_done())


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as gemini:
        entry = {"name": "google", "kind": "gemini", "base_url": gemini.base_url, "api_key": KEY}
        async with running_bot(fake, tmp_path, entry, max_input_bytes=2 * 1024 * 1024) as bot:
            yield Env(fake, gemini, bot)
        assert fake.violations == []


def bomb_png(width: int = 50_000, height: int = 50_000) -> bytes:
    """A tiny PNG whose header claims an enormous size (a decompression bomb)."""
    real = make_image(8, 8, "PNG", color=(1, 2, 3))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    patched = struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return real[:8] + patched + real[8 + 25 :]


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (64, 48), c) for c in ((250, 0, 0), (0, 250, 0), (0, 0, 250))]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "name", "title", "needle"),
    [
        (b"this is not an image at all", "cat.png", "Bad input", "cat.png"),
        (make_image(400, 300, "PNG", noisy=True)[:5000], "cut.png", "Bad input", "truncated"),
        (b"", "empty.png", "Bad input", "empty"),
        (bomb_png(), "bomb.png", "File too large", "bomb.png"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>', "x.png", "Bad input", "SVG"),
        (b"<!DOCTYPE html><html><body>hi</body></html>", "page.png", "Bad input", "HTML"),
    ],
)
async def test_bad_files_are_refused_without_charge(
    env: Env, data: bytes, name: str, title: str, needle: str
) -> None:
    message = await env.edit_with(data, name)
    embed = message["embeds"][0]
    assert title in embed["title"] and needle in embed["description"]
    assert message["flags"] & 64
    assert env.gemini.calls == 0
    assert await env.settled_usage() == (0, 0)
    await env.still_serving()


async def test_file_over_the_cap_is_refused_before_download(env: Env) -> None:
    message = await env.edit_with(make_image(1200, 1200, "PNG", noisy=True), "huge.png")
    assert "File too large" in message["embeds"][0]["title"] and message["flags"] & 64
    assert not [r for r in env.discord.requests if r.path.startswith("/cdn/")]
    assert env.gemini.calls == 0
    assert await env.settled_usage() == (0, 0)
    await env.still_serving()
    assert await env.settled_usage() == (100, 0)


async def test_animated_gif_uses_the_first_frame(env: Env) -> None:
    message = await env.edit_with(animated_gif(), "anim.gif", "image/gif")
    assert env.discord.files_of(message)
    body = env.gemini.requests[-1].json
    assert body is not None
    part = body["contents"][-1]["parts"][1]["inlineData"]
    with Image.open(io.BytesIO(base64.b64decode(part["data"]))) as sent:
        assert part["mimeType"] in ("image/png", "image/jpeg")
        pixel = sent.convert("RGB").getpixel((10, 10))
        assert isinstance(pixel, tuple)
        red, green, blue = pixel[:3]
        assert red > 200 and green < 50 and blue < 50  # the first (red) frame
    await env.still_serving()


@pytest.mark.parametrize(
    "prompt",
    [
        "a cat\u200b\u200d with\u202e reversed\u202c text and \u2067RTL\u2069",
        "'); DROP TABLE turns; -- \" OR 1=1 /* %s %(x)s {0}",
        "x" * 4000,
    ],
)
async def test_odd_prompts_pass_through_faithfully(env: Env, prompt: str) -> None:
    inter = await env.discord.send_slash("imagine", {"prompt": prompt})
    message = await inter.wait_done()
    assert env.discord.files_of(message)
    body = env.gemini.requests[-1].json
    assert body is not None and body["contents"][-1]["parts"][0]["text"] == prompt
    turn = await linked_turn(env.bot, message)  # linked just after the message is posted
    assert turn.prompt == prompt
    await env.still_serving()


async def test_prompt_over_the_models_limit(tmp_path: Path) -> None:
    async with FakeDiscord() as fake, FakeTask(api_key="k") as task:
        entry = {"name": "vtrix", "kind": "task", "base_url": task.base_url, "api_key": "k"}
        async with running_bot(fake, tmp_path, entry) as bot:
            inter = await fake.send_slash("imagine", {"prompt": "y" * 3000})
            message = await inter.wait_done()
            assert "2500" in message["embeds"][0]["description"] and message["flags"] & 64
            assert task.creates == 0
            assert await settled_usage(fake, bot) == (0, 0)
            inter = await fake.send_slash("imagine", {"prompt": "y" * 2500})  # exactly the limit
            assert fake.files_of(await inter.wait_done())
            assert task.creates == 1
            assert await settled_usage(fake, bot) == (175, 0)  # one nano_banana_2 image, charged once
        assert fake.violations == []


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("file:///etc/passwd", "not file:"),
        ("ftp://127.0.0.1:{port}{path}", "not ftp:"),
        ("gopher://127.0.0.1:{port}/_GET%20{path}", "not gopher:"),
        ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk", "not data:"),
        ("http://169.254.169.254/latest/meta-data/iam{path}", "169.254.169.254 is a private or local"),
        ("http://10.0.0.7{path}", "10.0.0.7 is a private or local"),
        ("http://[fe80::1]{path}", "fe80::1 is a private or local"),
        ("http://[::1]:{port}{path}", "::1 is a private or local"),
        ("http://[::ffff:127.0.0.1]:{port}{path}", "is a private or local"),
        ("http://[64:ff9b::7f00:1]:{port}{path}", "is a private or local"),  # NAT64 to 127.0.0.1
        ("http://localhost:{port}{path}", "localhost is a private or local"),  # resolves to 127.0.0.1
    ],
)
async def test_hostile_result_url_is_never_fetched(tmp_path: Path, url: str, needle: str) -> None:
    async with FakeDiscord() as fake, FakeOpenAIImages(api_key="k") as relay:
        entry = {"name": "relay", "kind": "openai-images", "base_url": relay.base_url, "api_key": "k"}
        async with running_bot(fake, tmp_path, entry) as bot:
            relay.script(Fault("url_hostile", message=url))  # the image really is at localhost:{port}
            inter = await fake.send_slash("imagine", {"prompt": "a lamp"})
            message = await inter.wait_done()
            [embed] = message["embeds"]
            assert "Provider unavailable" in embed["title"] and message["flags"] & 64
            assert "relay returned an unsafe image address" in embed["description"]
            assert needle in embed["description"]
            assert [r.method for r in relay.requests] == ["POST"]  # the result was not downloaded
            assert await settled_usage(fake, bot) == (0, 0)
            inter = await fake.send_slash("imagine", {"prompt": "an apple"})
            assert fake.files_of(await inter.wait_done())
            assert await settled_usage(fake, bot) == (100, 0)
        assert fake.violations == []


async def test_the_connecting_lookup_is_checked_too() -> None:
    """DNS rebinding: a name that passed check_url may answer differently when aiohttp connects;
    the bot's session re-checks that answer (localhost → 127.0.0.1 here), trusting only providers."""

    async def image(_: web.Request) -> web.Response:
        return web.Response(body=b"\x89PNG")

    app = web.Application()
    app.router.add_get("/x.png", image)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession(connector=guarded_connector(set())) as session:
            with pytest.raises(aiohttp.ClientConnectorError):  # refused before any connection
                await session.get(f"http://localhost:{port}/x.png")
        async with aiohttp.ClientSession(connector=guarded_connector({"localhost"})) as session:
            async with session.get(f"http://localhost:{port}/x.png") as response:
                assert response.status == 200  # a provider's own host may be anywhere
    finally:
        await runner.cleanup()
