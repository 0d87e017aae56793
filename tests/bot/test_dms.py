"""DMs through the fake Discord: off by default (not offered, and refused if they arrive anyway), and,
when allowed, governed by their own allowance, the operator's budget, cooldown and blocklists."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import NanoBot
from tests.botenv import GeminiWorld, eventually_async, gemini_world, text, title
from tests.fakes.discord.interactions import CommandUnavailable

KEY = "dm-key"
IMAGE_COMMANDS = ("imagine", "edit", "upscale")
MENUS = ("Edit image", "Upscale image")


class World(GeminiWorld):
    """This file's world: the shared fakes plus the helpers its tests use."""

    @property
    def dm(self) -> str:
        return self.discord.dm_channel("alice")

    async def dm_imagine(self, prompt: str = "a pear", *, force: bool = False) -> dict[str, Any]:
        inter = await self.discord.send_slash("imagine", {"prompt": prompt}, channel_id=self.dm, force=force)
        return await inter.wait_done()

    async def imagine(self, prompt: str = "a pear", user: str = "alice") -> dict[str, Any]:
        inter = await self.discord.send_slash("imagine", {"prompt": prompt}, user=user)
        return await inter.wait_done()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with gemini_world(World, tmp_path, KEY, ()) as world:
        yield world


async def settled(bot: NanoBot, guild_id: int = 0) -> None:
    """Wait until no job of this guild (0: DMs) holds a reservation (a charge is committed just after
    the user sees the result)."""
    assert bot.quotas is not None
    quotas = bot.quotas

    async def done() -> bool:
        return all(row.status != "reserved" for row in await quotas.audit(guild_id))

    await eventually_async(done, 30, "every job settled")


def synced(world: World, name: str, kind: int = 1) -> dict[str, Any]:
    [command] = [c for c in world.discord.commands if c["name"] == name and c["type"] == kind]
    return command


async def test_every_command_declares_installs_and_contexts(world: World) -> None:
    async with world.bot():
        for command in world.discord.commands:
            assert command.get("integration_types") == [0], command["name"]  # servers only
            assert command.get("contexts") == [0], command["name"]  # DMs off by default
    async with world.bot(allow_dms=True):
        for name in (*IMAGE_COMMANDS, "usage"):
            assert synced(world, name)["contexts"] == [0, 1]
        for name in MENUS:
            assert synced(world, name, kind=3)["contexts"] == [0, 1]
        for name in ("quota", "settings", "audit"):
            assert synced(world, name)["contexts"] == [0]  # admin commands stay in servers


async def test_dms_off_commands_are_not_offered_and_refused_if_they_arrive(world: World) -> None:
    """The exploit: a member blocked in the server was admitted 25 of 25 times in DMs."""
    async with world.bot(operator_daily_budget=100) as bot:
        await world.discord.send_slash(
            "quota set", {"scope": "user", "user": "alice", "limit": "blocked"}, user="admin"
        )
        with pytest.raises(CommandUnavailable):
            await world.dm_imagine()  # a current client does not offer it
        for _ in range(5):  # an old client (or a stale command) still sends it
            refused = await world.dm_imagine(force=True)
            assert "Not in DMs" in title(refused) and "Nothing was charged" in text(refused)
            assert not world.discord.files_of(refused)
        for name, options in (("edit", {"prompt": "brighter"}), ("upscale", {})):
            inter = await world.discord.send_slash(name, options, channel_id=world.dm, force=True)
            assert "Not in DMs" in title(await inter.wait_done())
        assert world.gemini.calls == 0
        assert bot.quotas is not None
        assert await bot.quotas.audit(0) == []  # nothing reserved, nothing charged
        assert "Not allowed" in title(await world.imagine())  # in the server the block still holds


async def test_a_reply_in_a_dm_is_refused_once_dms_are_off(world: World) -> None:
    async with world.bot(allow_dms=True):
        first = await world.dm_imagine("a lamp")
        assert world.discord.files_of(first)
    async with world.bot():
        await world.discord.user_message("make it red", reply_to=first, channel_id=world.dm)
        answer = await world.discord.wait_for_message(
            lambda m: (
                m["author"]["id"] == world.discord.app_id
                and m["channel_id"] == world.dm
                and m.get("message_reference") is not None
            ),
            timeout=20,
        )
        assert "Not in DMs" in title(answer) and not world.discord.files_of(answer)
    assert world.gemini.calls == 1


async def test_dms_allowed_are_governed_by_their_own_allowance(world: World) -> None:
    async with world.bot(allow_dms=True, dm_credits=2, dm_window="week") as bot:
        for _ in range(2):
            assert world.discord.files_of(await world.dm_imagine())
        refused = await world.dm_imagine()
        assert "Quota reached" in title(refused)
        assert "weekly allowance in DMs" in text(refused) and "0 of 2 left" in text(refused)
        assert world.gemini.calls == 2
        await settled(bot)
        usage = await (await world.discord.send_slash("usage", {}, channel_id=world.dm)).wait_done()
        fields = {f["name"]: f["value"] for f in usage["embeds"][0]["fields"]}
        assert usage["embeds"][0]["title"] == "Your usage in DMs"
        assert fields["Used"] == "2 credits" and fields["Limit"] == "2 per week" and "<t:" in fields["Resets"]
        assert bot.quotas is not None
        assert [row.status for row in await bot.quotas.audit(0)] == ["committed", "committed"]
        assert world.discord.files_of(await world.imagine())  # the server's own counters are separate
        other = await world.discord.send_slash("usage", {"user": "admin"}, channel_id=world.dm)
        refused = await other.wait_done()
        assert "your own allowance only" in text(refused) and not refused.get("attachments")


async def test_operator_budget_cooldown_and_blocklists_apply_in_dms(world: World) -> None:
    async with world.bot(
        allow_dms=True,
        dm_credits=100,
        dm_cooldown=3600,
        operator_daily_budget=2,
        blocklist=["forbidden fruit"],
    ):
        assert world.discord.files_of(await world.dm_imagine())
        cooling = await world.dm_imagine()
        assert "Cooldown" in title(cooling) and "<t:" in text(cooling)
        blocked = await world.dm_imagine("a FORBIDDEN  fruit")
        assert "Prompt not allowed" in title(blocked) and "this bot does not allow" in text(blocked)
        # the operator's blocklist also applies in every server, on top of the server's own
        in_server = await world.imagine("forbidden fruit", user="admin")
        assert "Prompt not allowed" in title(in_server)
        assert world.discord.files_of(await world.imagine("an orange", user="admin"))
        budget = await world.imagine("a plum", user="admin")  # 2 credits spent: one in DMs, one here
        assert "Quota reached" in title(budget) and "the bot's daily budget" in text(budget)
        assert world.gemini.calls == 2


async def test_operator_blocked_users_are_refused_everywhere(world: World) -> None:
    world.discord.add_user("carol")
    carol = int(world.discord.users["carol"]["id"])
    async with world.bot(allow_dms=True, blocked_users=[carol]):
        inter = await world.discord.send_slash(
            "imagine", {"prompt": "a fig"}, user="carol", channel_id=world.discord.dm_channel("carol")
        )
        assert "Not allowed" in title(await inter.wait_done())
        assert "Not allowed" in title(await world.imagine(user="carol"))
        assert world.discord.files_of(await world.imagine())
        assert world.gemini.calls == 1
