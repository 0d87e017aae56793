"""/imagine, /edit and /upscale through the real discord.py, against the fake Discord and fake providers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.app import NanoBot
from tests.botenv import embed_fields, image_size, running_bot
from tests.fakes.discord import FakeDiscord
from tests.fakes.imagegen import make_image
from tests.fakes.providers import FakeGemini, FakeNBPro, FakeOpenAIImages, FakeTask, Fault

GKEY = "gemini-secret-key"
PROVIDER_FAKES: dict[str, type[FakeOpenAIImages | FakeNBPro | FakeTask]] = {
    "openai-images": FakeOpenAIImages,
    "nbpro": FakeNBPro,
    "task": FakeTask,
}


@dataclass
class Env:
    discord: FakeDiscord
    gemini: FakeGemini
    bot: NanoBot


def gemini_entry(fake: FakeGemini, **extra: Any) -> dict[str, Any]:
    return {"name": "google", "kind": "gemini", "base_url": fake.base_url, "api_key": GKEY, **extra}


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with FakeDiscord() as discord_fake, FakeGemini(api_key=GKEY) as gemini:
        entry = gemini_entry(gemini)
        async with running_bot(discord_fake, tmp_path, entry) as bot:
            yield Env(discord_fake, gemini, bot)
        assert discord_fake.violations == []


async def test_imagine_delivers_image_with_embed(env: Env) -> None:
    inter = await env.discord.send_slash(
        "imagine", {"prompt": "a red apple on a table", "aspect_ratio": "16:9"}
    )
    ack = await inter.wait_ack()
    assert ack["type"] == 5  # deferred: "thinking…"
    message = await inter.wait_done()
    [(name, data)] = inter.files(message)
    assert name.endswith(".png")
    assert data == env.gemini.outputs[-1]  # provider bytes passed through untouched
    width, height = image_size(data)
    assert width / height == pytest.approx(16 / 9, rel=0.03)
    embed = message["embeds"][0]
    assert embed["description"] == "a red apple on a table"
    fields = embed_fields(message)
    assert "gemini-2.5-flash-image" in fields["Model"]
    assert f"{width}×{height}" in fields["Resolution"] and "16:9" in fields["Resolution"]
    assert fields["Time"].endswith(" s")
    assert "Model says" in fields  # 2.5 Flash speaks with its image
    assert not message["flags"] & 64


async def test_imagine_count_and_references(env: Env) -> None:
    refs = [make_image(200, 100, "PNG", color=(10, 20, 30)), make_image(50, 50, "JPEG", color=(1, 2, 3))]
    a1 = env.discord.upload_attachment(refs[0], "ref1.png", "image/png")
    a2 = env.discord.upload_attachment(refs[1], "ref2.jpg", "image/jpeg")
    inter = await env.discord.send_slash(
        "imagine", {"prompt": "combine", "count": 2, "image": a1, "image2": a2}
    )
    message = await inter.wait_done()
    assert len(inter.files(message)) == 2
    parts = env.gemini.requests[-1].json["contents"][-1]["parts"]
    sent = [p for p in parts if "inlineData" in p]
    assert len(sent) == 2
    import base64

    assert base64.b64decode(sent[0]["inlineData"]["data"]) == refs[0]


async def test_edit_auto_keeps_input_ratio(env: Env) -> None:
    source = make_image(900, 600, "PNG", color=(200, 0, 0))
    attachment = env.discord.upload_attachment(source, "photo.png", "image/png")
    inter = await env.discord.send_slash("edit", {"prompt": "make it blue", "image": attachment})
    message = await inter.wait_done()
    [(_, data)] = inter.files(message)
    width, height = image_size(data)
    assert width / height == pytest.approx(1.5, rel=0.03)
    config = env.gemini.requests[-1].json["generationConfig"]
    assert config["imageConfig"]["aspectRatio"] == "3:2"


async def test_edit_without_image_uses_latest_bot_image(env: Env) -> None:
    first = await env.discord.send_slash("imagine", {"prompt": "a pear", "aspect_ratio": "9:16"})
    await first.wait_done()
    produced = env.gemini.outputs[-1]
    inter = await env.discord.send_slash("edit", {"prompt": "add a hat"})
    await inter.wait_done()
    parts = env.gemini.requests[-1].json["contents"][-1]["parts"]
    import base64

    assert base64.b64decode(parts[1]["inlineData"]["data"]) == produced


async def test_edit_without_any_image_says_so(env: Env) -> None:
    inter = await env.discord.send_slash("edit", {"prompt": "add a hat"})
    message = await inter.wait_done()
    assert message["flags"] & 64
    assert "no image of mine" in message["embeds"][0]["description"]
    assert env.gemini.calls == 0


@pytest.mark.parametrize("factor", [2, 4])
async def test_upscale_local(env: Env, factor: int) -> None:
    source = make_image(300, 200, "PNG", color=(0, 90, 0))
    attachment = env.discord.upload_attachment(source, "small.png", "image/png")
    inter = await env.discord.send_slash("upscale", {"image": attachment, "factor": factor})
    message = await inter.wait_done()
    [(_, data)] = inter.files(message)
    assert image_size(data) == (300 * factor, 200 * factor)
    assert "local" in embed_fields(message)["Model"]


@pytest.mark.parametrize(
    ("fault", "times", "title", "needle"),
    [
        ("prompt_blocked", 1, "Blocked by safety filters", "PROHIBITED_CONTENT"),
        ("image_safety", 1, "Blocked by safety filters", "IMAGE_SAFETY"),
        (Fault("text_only", message="I prefer poems."), 1, "No image returned", "I prefer poems."),
        (Fault("rate_limited", retry_after=3600), 1, "Rate limited", "3600 s"),
        ("unavailable", 3, "Provider unavailable", "overloaded"),
        ("gateway_timeout", 3, "Timed out", "deadline"),
        ("bad_key", 1, "Provider account problem", "whoever runs the bot"),
    ],
)
async def test_errors_are_ephemeral_and_specific(
    env: Env, fault: Any, times: int, title: str, needle: str
) -> None:
    env.gemini.script(*[fault] * times)
    inter = await env.discord.send_slash("imagine", {"prompt": "something"})
    message = await inter.wait_done()
    assert message["flags"] & 64  # only the user sees it
    embed = message["embeds"][0]
    assert title in embed["title"] and needle in embed["description"]
    assert GKEY not in str(message)
    assert inter.original is None  # the public "thinking…" message is gone
    # The bot keeps serving.
    again = await env.discord.send_slash("imagine", {"prompt": "an apple"})
    assert inter.files(await again.wait_done())
    assert env.gemini.calls == times + 1


async def test_non_image_attachment_is_bad_input(env: Env) -> None:
    attachment = env.discord.upload_attachment(b"<html>hello</html>", "cat.png", "image/png")
    inter = await env.discord.send_slash("edit", {"prompt": "x", "image": attachment})
    message = await inter.wait_done()
    assert "Bad input" in message["embeds"][0]["title"]
    assert "cat.png" in message["embeds"][0]["description"]
    assert env.gemini.calls == 0


async def test_too_many_reference_images_for_model(tmp_path: Path) -> None:
    async with FakeDiscord() as fake, FakeGemini(api_key=GKEY) as gemini:
        entry = gemini_entry(gemini, max_input_images=1)
        async with running_bot(fake, tmp_path, entry):
            png = make_image(10, 10, "PNG")
            a1 = fake.upload_attachment(png, "a.png", "image/png")
            a2 = fake.upload_attachment(png, "b.png", "image/png")
            inter = await fake.send_slash("imagine", {"prompt": "x", "image": a1, "image2": a2})
            message = await inter.wait_done()
            assert "at most 1 input image" in message["embeds"][0]["description"]
            assert gemini.calls == 0


async def test_oversized_attachment_refused_before_download(tmp_path: Path) -> None:
    async with FakeDiscord() as fake, FakeGemini(api_key=GKEY) as gemini:
        async with running_bot(fake, tmp_path, gemini_entry(gemini), max_input_bytes=1000):
            big = fake.upload_attachment(make_image(300, 300, "PNG", noisy=True), "big.png", "image/png")
            inter = await fake.send_slash("edit", {"prompt": "x", "image": big})
            message = await inter.wait_done()
            assert "File too large" in message["embeds"][0]["title"]
            assert not [r for r in fake.requests if r.path.startswith("/cdn/")]


async def test_4k_noisy_png_is_fitted_under_the_limit(tmp_path: Path) -> None:
    async with FakeDiscord() as fake, FakeOpenAIImages(flavor="relay") as relay:
        relay.noisy = True
        entry = {
            "name": "relay",
            "kind": "openai-images",
            "base_url": relay.base_url,
            "models": ["nano-banana-2"],
        }
        async with running_bot(fake, tmp_path, entry):
            inter = await fake.send_slash("imagine", {"prompt": "static", "resolution": "4K"})
            message = await inter.wait_done(timeout=90)
            [(name, data)] = inter.files(message)
            assert len(relay.outputs[-1]) > 10 * 1024 * 1024  # the provider's PNG did not fit
            assert len(data) <= 10 * 1024 * 1024
            assert image_size(data) == (4096, 4096)  # aspect kept (and here, size too)
            assert name.endswith((".jpg", ".webp"))
            assert "upload limit" in message["embeds"][0]["footer"]["text"]
        assert fake.violations == []


@pytest.mark.parametrize("kind", ["openai-images", "nbpro", "task"])
async def test_imagine_with_each_provider_kind(tmp_path: Path, kind: str) -> None:
    async with FakeDiscord() as fake, PROVIDER_FAKES[kind](api_key="k") as provider:
        entry = {"name": "p", "kind": kind, "base_url": provider.base_url, "api_key": "k"}
        async with running_bot(fake, tmp_path, entry):
            inter = await fake.send_slash("imagine", {"prompt": "a boat", "aspect_ratio": "3:4"})
            message = await inter.wait_done()
            [(_, data)] = inter.files(message)
            width, height = image_size(data)
            assert width / height == pytest.approx(3 / 4, rel=0.03)
            assert data == provider.outputs[-1]
        assert fake.violations == []


@pytest.mark.parametrize("kind", ["openai-images", "nbpro", "task"])
async def test_edit_with_each_provider_kind(tmp_path: Path, kind: str) -> None:
    async with FakeDiscord() as fake, PROVIDER_FAKES[kind](api_key="k") as provider:
        entry = {"name": "p", "kind": kind, "base_url": provider.base_url, "api_key": "k"}
        async with running_bot(fake, tmp_path, entry):
            source = make_image(800, 600, "PNG", color=(9, 99, 199))
            attachment = fake.upload_attachment(source, "in.png", "image/png")
            inter = await fake.send_slash("edit", {"prompt": "add snow", "image": attachment})
            message = await inter.wait_done()
            [(_, data)] = inter.files(message)
            width, height = image_size(data)
            assert width / height == pytest.approx(4 / 3, rel=0.03)
            create = next(r for r in provider.requests if r.method == "POST")
            if kind == "task":  # URL-only inputs: the Discord attachment URL is passed on
                assert create.json["input"][0]["params"]["image_urls"] == [attachment["url"]]
            else:  # the bytes are uploaded as they were
                assert [f[3] for f in create.files] == [source]
        assert fake.violations == []
