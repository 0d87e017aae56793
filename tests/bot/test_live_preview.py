"""Live previews through the fake Discord and the fake Gemini: the "thinking…" message shows the model's
interim image while it works, the result replaces it byte for byte as a non-streamed run makes it, and
a cancel or a stream cut short leaves no preview behind."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bot.jobs.supervisor import Progress
from bot.providers.base import ImageData, Preview
from bot.ui.preview import PREVIEW_INTERVAL, PreviewBoard, board_of, close_previews
from tests.botenv import (
    GeminiWorld,
    cancel_id,
    eventually,
    gemini_world,
    settled_usage,
    wait_result,
)
from tests.fakes.discord import InteractionHandle
from tests.fakes.imagegen import make_image

KEY = "preview-key"
PRO = "gemini-3-pro-image-preview"
NB2 = "gemini-3.1-flash-image-preview"
OPTIONS = {"prompt": "a lighthouse at dusk", "model": PRO, "seed": 4242}


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[GeminiWorld]:
    async with gemini_world(GeminiWorld, tmp_path, KEY) as found:
        yield found


def streamed_thought_images(world: GeminiWorld) -> list[bytes]:
    """The interim images the last stream sent, in order."""
    parts = [p for c in world.gemini.stream.sent[-1] for p in c["candidates"][0]["content"]["parts"]]
    return [
        base64.b64decode(p["inlineData"]["data"]) for p in parts if p.get("thought") and "inlineData" in p
    ]


async def preview_shown(world: GeminiWorld, inter: InteractionHandle) -> dict[str, Any]:
    """The "thinking…" message once it carries an image (the timeout only ends a hang)."""
    await eventually(lambda: bool((inter.original or {}).get("attachments")), what="a preview edit")
    message = inter.original
    assert message is not None
    return message


async def test_the_thought_image_is_shown_before_the_result_replaces_it(world: GeminiWorld) -> None:
    final = world.gemini.stream.hold("image")  # the final image is not sent until the test says so
    async with world.bot(live_preview=True) as bot:
        inter = await world.discord.send_slash("imagine", OPTIONS)
        shown = await preview_shown(world, inter)
        [(name, data)] = world.discord.files_of(shown)
        assert name.startswith("preview.") and data == streamed_thought_images(world)[-1]
        assert "💭 Composing the scene" in shown["content"] and not shown["embeds"]
        assert cancel_id(shown)  # still cancellable while it thinks
        final.set()
        result = await wait_result(inter)
        [(name, streamed)] = world.discord.files_of(result)
        assert not name.startswith("preview") and streamed == world.gemini.outputs[-1]
        assert not result["content"]  # the summary line went with the preview
        used, reserved = await settled_usage(world.discord, bot)
        assert used > 0 and reserved == 0  # charged once delivered, as any job
    [post] = [r for r in world.gemini.requests if r.method == "POST"]
    assert post.path.endswith(":streamGenerateContent") and post.query == {"alt": "sse"}
    assert (post.json or {})["generationConfig"]["thinkingConfig"] == {"includeThoughts": True}

    world.gemini._counter = 0  # the fake colours an image by its call count: now it repeats the first
    async with world.bot(live_preview=False):
        inter = await world.discord.send_slash("imagine", OPTIONS)
        [(_, plain)] = world.discord.files_of(await wait_result(inter))
    assert plain == streamed  # byte for byte what the non-streamed path delivers
    last = [r for r in world.gemini.requests if r.method == "POST"][-1]
    assert (
        last.path.endswith(":generateContent")
        and "thinkingConfig" not in (last.json or {})["generationConfig"]
    )
    assert sum(r.path.endswith(":streamGenerateContent") for r in world.gemini.requests) == 1


async def test_without_live_preview_nothing_streams(world: GeminiWorld) -> None:
    async with world.bot(live_preview=False):
        for model in (PRO, NB2):
            inter = await world.discord.send_slash("imagine", {**OPTIONS, "model": model})
            assert world.discord.files_of(await wait_result(inter))
    assert [r.path.rsplit(":", 1)[1] for r in world.gemini.requests] == ["generateContent"] * 2
    assert world.gemini.stream.answers == []


async def test_a_cancel_while_previewing_leaves_no_preview(world: GeminiWorld) -> None:
    world.gemini.stream.hold("image")  # never released: the model is still at work when cancelled
    async with world.bot(live_preview=True) as bot:
        inter = await world.discord.send_slash("imagine", OPTIONS)
        shown = await preview_shown(world, inter)
        click = await world.discord.send_component(shown, cancel_id(shown))
        await click.wait_ack()
        final = inter.original or {}
        assert "Cancelled" in final.get("content", "")
        assert not world.discord.files_of(final)
        used, reserved = await settled_usage(world.discord, bot)
        assert reserved == 0 and used > 0  # the provider had started: charged, as any cancel then


async def test_a_stream_cut_short_fails_cleanly_and_refunds(world: GeminiWorld) -> None:
    gate = world.gemini.stream.hold("image")
    world.gemini.stream.break_at("image", how="cut")
    async with world.bot(live_preview=True) as bot:
        inter = await world.discord.send_slash("imagine", OPTIONS)
        await preview_shown(world, inter)
        gate.set()  # the fake now cuts the connection instead of sending the image
        error = await wait_result(inter)
        assert "stopped sending the answer half-way" in error["embeds"][0]["description"]
        assert inter.original is None  # the message with the preview is gone
        assert await settled_usage(world.discord, bot) == (0, 0)
    assert world.gemini.calls == 1


def preview(n: int) -> Preview:
    return Preview(ImageData(make_image(8, 8, "PNG", color=(n, n, n)), "image/png"), f"thought {n}")


def running(shown: Preview | None = None) -> Progress:
    return Progress("job", "running", "google", elapsed=1.0, charged=True, preview=shown)


def test_one_preview_per_interval_the_latest_kept_for_the_next_update() -> None:
    now = [100.0]
    board = PreviewBoard(clock=lambda: now[0])
    first = board.attachments(running(preview(1)), 10_000_000)
    assert first is not None and first["attachments"][0].filename == "preview.png"
    assert board.attachments(running(preview(2)), 10_000_000) is None  # too soon: no edit at all
    assert board.attachments(running(preview(3)), 10_000_000) is None
    assert board.attachments(running(), 10_000_000) == {}  # a time update keeps the shown image
    assert board.summary_line() == "\n💭 thought 1"
    now[0] += PREVIEW_INTERVAL
    later = board.attachments(running(), 10_000_000)  # the next update brings the latest, 3
    assert later is not None and later["attachments"][0].fp.read() == preview(3).image.data
    assert board.summary_line() == "\n💭 thought 3"
    now[0] += PREVIEW_INTERVAL
    assert board.attachments(running(), 10_000_000) == {}  # 2 was dropped, never shown


def test_a_preview_over_the_upload_limit_shows_its_summary_only() -> None:
    board = PreviewBoard()
    assert board.attachments(running(preview(1)), 10) == {}
    assert board.summary_line() == "\n💭 thought 1"


async def test_closing_the_board_stops_every_later_edit() -> None:
    interaction: Any = SimpleNamespace(extras={})
    board = board_of(interaction)
    assert board_of(interaction) is board and not board.closed
    await close_previews(interaction)
    assert board.closed and not board.lock.locked()
    await close_previews(SimpleNamespace(extras={}))  # no board: nothing to close


async def test_a_server_can_turn_previews_off(world: GeminiWorld) -> None:
    async with world.bot(live_preview=True):
        inter = await world.discord.send_slash("settings set", {"previews": "off"}, user="admin")
        shown = await inter.wait_done()
        fields = {f["name"]: f["value"] for f in shown["embeds"][0]["fields"]}
        assert fields["Live preview"] == "off"
        inter = await world.discord.send_slash("imagine", OPTIONS)
        assert world.discord.files_of(await wait_result(inter))
        inter = await world.discord.send_slash("settings set", {"previews": "on"}, user="admin")
        fields = {f["name"]: f["value"] for f in (await inter.wait_done())["embeds"][0]["fields"]}
        assert fields["Live preview"].startswith("on")
        inter = await world.discord.send_slash("imagine", OPTIONS)
        assert world.discord.files_of(await wait_result(inter))
    methods = [r.path.rsplit(":", 1)[1] for r in world.gemini.requests if r.method == "POST"]
    assert methods == ["generateContent", "streamGenerateContent"]
