"""CONTINUE_POLICY=starter through the fake Discord: only whoever started a conversation may continue
it, by every way there is (buttons, the ✏️ modal, both menus, /edit and /upscale on the channel's
latest image, replies); a refusal is a clear private message, calls no provider and charges nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.botenv import GeminiWorld, button_id, gemini_world, settled_usage, wait_result

KEY = "continue-key"
EPHEMERAL = 64
#: Every way of continuing a result: its buttons, the ✏️ modal, both menus, the two commands that
#: take "the latest image" when given none, and a reply.
WAYS = (
    "reroll",
    "vsub",
    "vstr",
    "up2",
    "up4",
    "edit",
    "menu-edit",
    "menu-upscale",
    "/edit",
    "/upscale",
    "reply",
)
#: The ways that ask an image model (the upscales run on the local upscaler).
GENERATES = {"reroll", "vsub", "vstr", "edit", "menu-edit", "/edit", "reply"}


class World(GeminiWorld):
    """This file's world: the shared fakes plus the helpers its tests use."""

    async def imagine(self, user: str = "alice", prompt: str = "a lighthouse") -> dict[str, Any]:
        inter = await self.discord.send_slash("imagine", {"prompt": prompt}, user=user)
        return await wait_result(inter)

    def mention(self, user: str) -> str:
        return f"<@{self.discord.users[user]['id']}>"


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with gemini_world(World, tmp_path, KEY, ("bob",)) as world:
        yield world


async def submit_modal(world: World, opened: Any, user: str, text: str) -> dict[str, Any]:
    """Fill in the modal an interaction opened and return what the submitter is answered."""
    await opened.wait_ack()
    assert opened.modal is not None, "no modal opened"
    field = opened.modal["components"][0]["components"][0]["custom_id"]
    submit = await world.discord.send_modal_submit(opened.modal["custom_id"], {field: text}, user=user)
    return await wait_result(submit)


async def bot_reply(world: World, to: dict[str, Any], text: str, user: str) -> dict[str, Any]:
    """A member replies to a result; the bot's answer to that reply."""
    sent = await world.discord.user_message(text, reply_to=to, user=user)
    return await world.discord.wait_for_message(
        lambda m: (
            (m.get("message_reference") or {}).get("message_id") == sent["id"]
            and m["author"]["id"] == world.discord.app_id
        )
    )


async def continue_(world: World, result: dict[str, Any], way: str, user: str) -> dict[str, Any]:
    """`user` continues the conversation shown by `result` one way; what they are answered."""
    fake = world.discord
    if way in ("reroll", "vsub", "vstr", "up2", "up4"):
        return await wait_result(await fake.send_component(result, button_id(result, way), user=user))
    if way == "edit":
        clicked = await fake.send_component(result, button_id(result, "edit"), user=user)
        return await submit_modal(world, clicked, user, "add a boat")
    if way == "menu-edit":
        menu = await fake.send_message_command("Edit image", result, user=user)
        return await submit_modal(world, menu, user, "add a boat")
    if way == "menu-upscale":
        return await wait_result(await fake.send_message_command("Upscale image", result, user=user))
    if way == "/edit":
        return await wait_result(await fake.send_slash("edit", {"prompt": "add a boat"}, user=user))
    if way == "/upscale":
        return await wait_result(await fake.send_slash("upscale", {"factor": 2}, user=user))
    assert way == "reply"
    return await bot_reply(world, result, "add a boat", user)


def refusal(message: dict[str, Any]) -> tuple[str, str]:
    """(title, text) of an error embed."""
    [embed] = message["embeds"]
    return str(embed.get("title")), str(embed.get("description"))


@pytest.mark.parametrize("way", WAYS)
async def test_another_member_cannot_continue_under_starter(world: World, way: str) -> None:
    async with world.bot(continue_policy="starter") as bot:
        result = await world.imagine()
        calls, images = world.gemini.calls, world.images_posted()
        answer = await continue_(world, result, way, "bob")
        assert refusal(answer) == (
            "🔒 Not your conversation",
            f"Only {world.mention('alice')}, who started this conversation, can continue it.",
        )
        assert not world.discord.files_of(answer)
        if way != "reply":  # an interaction's refusal is private (a reply can only answer in public)
            assert int(answer.get("flags") or 0) & EPHEMERAL
        assert world.gemini.calls == calls and world.images_posted() == images
        assert await settled_usage(world.discord, bot, "bob") == (0, 0)
        # Refused, not broken: alice's conversation goes on, and bob's own commands still work.
        assert world.discord.files_of(await continue_(world, result, way, "alice"))
        assert world.discord.files_of(await world.imagine(user="bob", prompt="a windmill"))


@pytest.mark.parametrize("way", WAYS)
async def test_the_starter_continues_every_way(world: World, way: str) -> None:
    async with world.bot(continue_policy="starter"):
        result = await world.imagine()
        calls = world.gemini.calls
        answer = await continue_(world, result, way, "alice")
        assert world.discord.files_of(answer), refusal(answer)
        assert world.gemini.calls == calls + (1 if way in GENERATES else 0)


@pytest.mark.parametrize("way", WAYS)
async def test_anyone_may_continue_by_default(world: World, way: str) -> None:
    async with world.bot():
        result = await world.imagine()
        calls = world.gemini.calls
        answer = await continue_(world, result, way, "bob")
        assert world.discord.files_of(answer), refusal(answer)
        assert world.gemini.calls == calls + (1 if way in GENERATES else 0)


async def test_the_starter_is_the_root_of_a_conversation_others_joined(world: World) -> None:
    """A result bob made inside alice's conversation (while anyone could) is still alice's to continue."""
    async with world.bot():
        root = await world.imagine()
        joined = await continue_(world, root, "reply", "bob")
        assert world.discord.files_of(joined)
    async with world.bot(continue_policy="starter"):
        calls = world.gemini.calls
        for way in ("reroll", "reply"):
            answer = await continue_(world, joined, way, "bob")
            assert refusal(answer)[0] == "🔒 Not your conversation"
        assert world.gemini.calls == calls
        assert world.discord.files_of(await continue_(world, joined, "vstr", "alice"))
