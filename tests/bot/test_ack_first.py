"""Buttons and menus answer Discord before touching the database: with PostgreSQL unreachable (behind
a TCP relay the test cuts), every click and menu is acknowledged within Discord's 3 seconds (a deferral
or the modal), and the user then reads "Database unavailable", never "This interaction failed"."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from bot.app import NanoBot
from tests.botenv import (
    OutageWorld,
    button_id,
    eventually,
    outage_world,
    settled_usage,
    wait_result,
)
from tests.fakes.discord import InteractionHandle

KEY = "ack-first-key"
#: How long the bot waits out an unreachable database before it gives up on a request: the default,
#: far longer than Discord waits for an interaction's first answer.
OUTAGE_BUDGET = 10.0
#: Discord's limit for the first answer to an interaction.
ACK_LIMIT = 3.0
EPHEMERAL = 64
MENUS = ("Edit image", "Upscale image")


class World(OutageWorld):
    """This file's outage world, with the helpers its tests use."""

    async def imagine(self, bot: NanoBot) -> dict[str, Any]:
        """A result, once its delivery is recorded (nothing of it is left to write when the database goes)."""
        result = await wait_result(await self.discord.send_slash("imagine", {"prompt": "a lantern"}))
        assert self.discord.files_of(result)
        assert (await settled_usage(self.discord, bot))[1] == 0
        return result

    async def click(self, message: dict[str, Any], action: str) -> InteractionHandle:
        return await self.discord.send_component(message, button_id(message, action))


def world(tmp_path: Path) -> contextlib.AbstractAsyncContextManager[World]:
    """The world of these tests."""
    return outage_world(World, tmp_path, KEY, OUTAGE_BUDGET)


async def acknowledged(inter: InteractionHandle) -> None:
    """The interaction was answered in time (the fake fails it past Discord's deadline)."""
    await inter.wait_ack(timeout=OUTAGE_BUDGET + 60)  # a late answer ends the wait at once: fails
    assert inter.ack_latency is not None and inter.ack_latency < ACK_LIMIT


async def submitted(world: World, opened: InteractionHandle) -> InteractionHandle:
    """Submit the modal an interaction opened (the instruction typed in its one field)."""
    await acknowledged(opened)
    assert opened.modal is not None, "no modal opened"
    field = opened.modal["components"][0]["components"][0]["custom_id"]
    submit = await world.discord.send_modal_submit(opened.modal["custom_id"], {field: "add a moth"})
    await acknowledged(submit)
    return submit


async def told(inter: InteractionHandle) -> dict[str, Any]:
    """The private message the user got once the bot gave up on the database."""
    await eventually(lambda: bool(inter.followups), OUTAGE_BUDGET + 60, f"an answer to {inter.id}")
    return inter.followups[-1]


def title(message: dict[str, Any]) -> str:
    return str((message.get("embeds") or [{}])[0].get("title") or "")


async def test_clicks_and_menus_are_answered_while_the_database_is_down(tmp_path: Path) -> None:
    async with world(tmp_path) as w, w.bot() as bot:
        result = await w.imagine(bot)
        calls = w.gemini.calls
        await w.proxy.cut()
        clicks = {action: await w.click(result, action) for action in ("reroll", "up2", "del", "edit")}
        menus = {name: await w.discord.send_message_command(name, result) for name in MENUS}
        for inter in (*clicks.values(), *menus.values()):
            await acknowledged(inter)  # a deferral, or the modal, with the database still gone
        answered = [clicks["reroll"], clicks["up2"], clicks["del"], menus["Upscale image"]]
        answered += [await submitted(w, clicks["edit"]), await submitted(w, menus["Edit image"])]
        for inter in answered:
            message = await told(inter)
            assert title(message).endswith("Database unavailable"), title(message)
            assert int(message.get("flags") or 0) & EPHEMERAL and not w.discord.files_of(message)
        assert w.gemini.calls == calls
        assert any(m["id"] == result["id"] for m in w.discord.messages[result["channel_id"]])  # not deleted
        await w.proxy.restore()
        again = await wait_result(await w.click(result, "reroll"))  # back to normal once it is back
        assert w.discord.files_of(again) and w.gemini.calls == calls + 1
