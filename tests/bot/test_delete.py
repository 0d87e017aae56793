"""🗑️ Delete through the fake Discord: the turn is marked deleted, its image files go (unless another
live result uses them), and the result is never again re-posted, re-fetched, taken as "the latest
image", continued from a stale copy of its message, or worked on by a menu."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import NanoBot
from bot.storage.blobs import blob_path
from bot.storage.turns import TurnRecord
from tests.botenv import (
    GeminiWorld,
    button_id,
    eventually,
    gemini_world,
    image_size,
    wait_result,
)
from tests.fakes.imagegen import make_image

KEY = "delete-key"
EPHEMERAL = 64
#: What a stale copy of a deleted result's message still offers.
STALE_WAYS = ("reroll", "vsub", "vstr", "up2", "up4", "edit", "menu-edit", "menu-upscale", "reply")


class World(GeminiWorld):
    """This file's world: the shared fakes plus the helpers its tests use."""

    async def imagine(self, prompt: str = "a harbour", **options: Any) -> dict[str, Any]:
        inter = await self.discord.send_slash("imagine", {"prompt": prompt, **options})
        return await wait_result(inter)

    async def delete(self, message: dict[str, Any], user: str = "alice") -> None:
        """Click 🗑️ on a result and wait until its message is gone."""
        clicked = await self.discord.send_component(message, button_id(message, "del"), user=user)
        await clicked.wait_ack()
        await self.gone(message)

    async def gone(self, message: dict[str, Any]) -> None:
        """Wait until the fake Discord no longer shows the message."""
        await eventually(lambda: not self.shown(message), what=f"deletion of {message['id']}")

    def shown(self, message: dict[str, Any]) -> bool:
        return any(m["id"] == message["id"] for m in self.discord.messages[message["channel_id"]])


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with gemini_world(World, tmp_path, KEY, ("bob",)) as world:
        yield world


async def turn_of(bot: NanoBot, message: dict[str, Any]) -> TurnRecord:
    """The stored turn a result's buttons belong to, as the database has it now."""
    assert bot.service.turns is not None
    turn = await bot.service.turns.get(int(button_id(message, "del").split(":")[2]))
    assert turn is not None
    return turn


def blob_file(bot: NanoBot, sha256: str) -> Path:
    assert bot.service.blobs is not None
    return blob_path(bot.service.blobs.root, sha256)


def error_text(message: dict[str, Any]) -> str:
    """Title and text of an error embed."""
    [embed] = message["embeds"]
    return f"{embed.get('title')}: {embed.get('description')}"


def sent_images(world: World) -> list[bytes]:
    """Every image the last request to the model carried (history and inputs)."""
    body = world.gemini.requests[-1].json
    assert body is not None
    contents = body["contents"]
    parts = [part for turn in contents for part in turn["parts"]]
    return [base64.b64decode(part["inlineData"]["data"]) for part in parts if "inlineData" in part]


async def bot_reply(world: World, to: dict[str, Any], text: str) -> dict[str, Any]:
    """Alice replies to a message; the bot's answer to that reply."""
    sent = await world.discord.user_message(text, reply_to=to)
    return await world.discord.wait_for_message(
        lambda m: (
            (m.get("message_reference") or {}).get("message_id") == sent["id"]
            and m["author"]["id"] == world.discord.app_id
        )
    )


async def use_stale(world: World, stale: dict[str, Any], way: str) -> dict[str, Any]:
    """Use a stale copy of a result's message one way; what the user is answered."""
    fake = world.discord
    if way in ("reroll", "vsub", "vstr", "up2", "up4"):
        return await wait_result(await fake.send_component(stale, button_id(stale, way), force=True))
    if way in ("edit", "menu-edit"):
        opened = (
            await fake.send_component(stale, button_id(stale, "edit"), force=True)
            if way == "edit"
            else await fake.send_message_command("Edit image", stale)
        )
        await opened.wait_ack()
        assert opened.modal is not None, "no modal opened"
        field = opened.modal["components"][0]["components"][0]["custom_id"]
        return await wait_result(
            await fake.send_modal_submit(opened.modal["custom_id"], {field: "add a gull"})
        )
    if way == "menu-upscale":
        return await wait_result(await fake.send_message_command("Upscale image", stale))
    assert way == "reply"
    return await bot_reply(world, stale, "add a gull")


async def test_delete_marks_the_turn_deleted_and_removes_its_files(world: World) -> None:
    async with world.bot() as bot:
        result = await world.imagine()
        [output] = (await turn_of(bot, result)).output_images
        assert blob_file(bot, output.sha256).is_file()
        await world.delete(result)
        assert (await turn_of(bot, result)).status == "deleted"
        assert not blob_file(bot, output.sha256).exists()
        assert world.discord.files_of(await world.imagine("a pier"))  # the next command still works


@pytest.mark.parametrize("way", STALE_WAYS)
async def test_a_stale_copy_of_a_deleted_result_does_nothing(world: World, way: str) -> None:
    async with world.bot():
        stale = await world.imagine()
        await world.delete(stale)
        calls, images, requests = world.gemini.calls, world.images_posted(), len(world.discord.requests)
        answer = await use_stale(world, stale, way)
        assert not world.discord.files_of(answer)
        assert "deleted" in error_text(answer) or "no longer" in error_text(answer), error_text(answer)
        if way != "reply":  # an interaction's refusal is private (a reply can only answer in public)
            assert int(answer.get("flags") or 0) & EPHEMERAL
        assert world.gemini.calls == calls and world.images_posted() == images
        refetched = [r.path for r in world.discord.requests[requests:] if r.path.startswith("/cdn/")]
        assert refetched == [], "the deleted image was downloaded again"
        assert world.discord.files_of(await world.imagine("a pier"))  # the next command still works


async def test_the_latest_image_is_never_a_deleted_one(world: World) -> None:
    async with world.bot():
        older = await world.imagine("a wide harbour", aspect_ratio="16:9")
        [(_, older_image)] = world.discord.files_of(older)
        newer = await world.imagine("a square harbour", aspect_ratio="1:1")
        await world.delete(newer)
        edited = await wait_result(await world.discord.send_slash("edit", {"prompt": "at night"}))
        [sent] = sent_images(world)
        assert image_size(sent) == image_size(older_image)  # the older result, not the deleted one
        await world.delete(edited)
        upscaled = await wait_result(await world.discord.send_slash("upscale", {"factor": 2}))
        [(_, data)] = world.discord.files_of(upscaled)
        assert image_size(data) == tuple(2 * side for side in image_size(older_image))
        await world.delete(upscaled)
        await world.delete(older)
        calls, images = world.gemini.calls, world.images_posted()
        for command, options in (("upscale", {"factor": 2}), ("edit", {"prompt": "at dawn"})):
            answer = await wait_result(await world.discord.send_slash(command, options))
            assert not world.discord.files_of(answer)
            assert "no image of mine" in error_text(answer), error_text(answer)
        assert world.gemini.calls == calls and world.images_posted() == images


async def test_a_file_another_live_result_uses_is_kept(world: World) -> None:
    photo = make_image(320, 240, "PNG", color=(20, 90, 160))
    async with world.bot() as bot:
        results = []
        for prompt in ("add a boat", "add a bird"):
            inter = await world.discord.send_slash("edit", {"prompt": prompt, "image": ("photo.png", photo)})
            results.append(await wait_result(inter))
        first, second = [await turn_of(bot, r) for r in results]
        [shared] = {ref.sha256 for ref in first.input_images} & {ref.sha256 for ref in second.input_images}
        [first_out], [second_out] = first.output_images, second.output_images
        assert first_out.sha256 != second_out.sha256
        await world.delete(results[0])
        assert blob_file(bot, shared).is_file()  # the second result still uses the photo
        assert not blob_file(bot, first_out.sha256).exists()
        assert blob_file(bot, second_out.sha256).is_file()
        await world.delete(results[1])
        assert not blob_file(bot, shared).exists()  # now no live result uses it
        assert not blob_file(bot, second_out.sha256).exists()


async def test_only_the_owner_or_a_moderator_deletes(world: World) -> None:
    async with world.bot() as bot:
        result = await world.imagine()
        [output] = (await turn_of(bot, result)).output_images
        clicked = await world.discord.send_component(result, button_id(result, "del"), user="bob")
        refusal = await clicked.wait_done()
        assert "Not yours" in error_text(refusal) and int(refusal.get("flags") or 0) & EPHEMERAL
        assert world.shown(result) and (await turn_of(bot, result)).status == "done"
        assert blob_file(bot, output.sha256).is_file()
        await world.delete(result, user="admin")
        assert (await turn_of(bot, result)).status == "deleted"
        assert not blob_file(bot, output.sha256).exists()


async def test_a_deleted_result_is_left_out_of_its_conversation(world: World) -> None:
    async with world.bot():
        root = await world.imagine("a cat", model="gemini-3-pro-image-preview")
        child = await bot_reply(world, root, "make it purple")
        assert world.discord.files_of(child)
        await world.delete(root)
        assert world.discord.files_of(await bot_reply(world, child, "add a hat"))
        assert sent_images(world) == [world.gemini.outputs[1]]  # the child's image, never the root's


async def test_a_message_discord_kept_is_removed_by_a_second_click(world: World) -> None:
    async with world.bot() as bot:
        result = await world.imagine()
        [output] = (await turn_of(bot, result)).output_images
        world.discord.fail_next("DELETE", r"^/channels/\d+/messages/\d+$", 403, code=50013)
        clicked = await world.discord.send_component(result, button_id(result, "del"))
        told = await clicked.wait_done()
        assert "not removed" in error_text(told) and int(told.get("flags") or 0) & EPHEMERAL
        assert world.shown(result)  # Discord kept the message…
        assert (await turn_of(bot, result)).status == "deleted"  # …but the result is gone for good
        assert not blob_file(bot, output.sha256).exists()
        await world.delete(result)  # and clicking again removes the message


async def test_a_kept_message_of_a_deleted_result_is_not_the_latest_image(world: World) -> None:
    async with world.bot():
        result = await world.imagine()
        world.discord.fail_next("DELETE", r"^/channels/\d+/messages/\d+$", 403, code=50013)
        clicked = await world.discord.send_component(result, button_id(result, "del"))
        assert "not removed" in error_text(await clicked.wait_done())
        images = world.images_posted()
        answer = await wait_result(await world.discord.send_slash("upscale", {"factor": 2}))
        assert not world.discord.files_of(answer), "the deleted image was upscaled and posted again"
        assert world.images_posted() == images
