"""USER_INSTALL through the fake Discord: off, every command is installed to servers only; on, the
image commands (and /forget) may also be added to a member's account and offered in DMs and group
DMs, where the DM allowance governs them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.botenv import GeminiWorld, gemini_world, text, title, wait_result

KEY = "user-install-key"
USER_COMMANDS = ("imagine", "edit", "upscale", "forget")
GUILD, BOT_DM, PRIVATE_CHANNEL = 0, 1, 2
GUILD_INSTALL, USER_INSTALL = 0, 1


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[GeminiWorld]:
    async with gemini_world(GeminiWorld, tmp_path, KEY, ()) as world:
        yield world


def synced(world: GeminiWorld, name: str, kind: int = 1) -> dict[str, Any]:
    [command] = [c for c in world.discord.commands if c["name"] == name and c["type"] == kind]
    return command


async def test_off_by_default_every_command_is_installed_to_servers_only(world: GeminiWorld) -> None:
    async with world.bot(allow_dms=True):
        for command in world.discord.commands:
            assert command.get("integration_types") == [GUILD_INSTALL], command["name"]
            assert PRIVATE_CHANNEL not in (command.get("contexts") or []), command["name"]


async def test_on_the_image_commands_are_user_installable_everywhere(world: GeminiWorld) -> None:
    async with world.bot(user_install=True, allow_dms=True):
        for name in USER_COMMANDS:
            command = synced(world, name)
            assert command["integration_types"] == [GUILD_INSTALL, USER_INSTALL], name
            assert command["contexts"] == [GUILD, BOT_DM, PRIVATE_CHANNEL], name
        for name in ("quota", "settings", "audit", "usage"):
            assert synced(world, name)["integration_types"] == [GUILD_INSTALL], name
        for name in ("Edit image", "Upscale image"):  # they read a message of the channel
            assert synced(world, name, kind=3)["integration_types"] == [GUILD_INSTALL], name


async def test_outside_a_server_the_dm_allowance_decides(world: GeminiWorld) -> None:
    dm = world.discord.dm_channel("alice")
    async with world.bot(user_install=True):  # ALLOW_DMS off: refused, nothing charged
        refused = await (
            await world.discord.send_slash("imagine", {"prompt": "a pear"}, channel_id=dm)
        ).wait_done()
        assert "Not in DMs" in title(refused) and not world.discord.files_of(refused)
        assert world.gemini.calls == 0
    async with world.bot(user_install=True, allow_dms=True):
        made = await (
            await world.discord.send_slash("imagine", {"prompt": "a pear"}, channel_id=dm)
        ).wait_done()
        assert world.discord.files_of(made)


async def test_in_a_server_that_did_not_add_the_bot_the_dm_rules_apply(world: GeminiWorld) -> None:
    fake = world.discord
    async with world.bot(user_install=True):  # ALLOW_DMS off: a use outside our servers is refused
        inter = await fake.send_slash("imagine", {"prompt": "a pear"}, user_install=True)
        assert "Not in DMs" in title(await inter.wait_done()) and world.gemini.calls == 0
    async with world.bot(user_install=True, allow_dms=True) as bot:
        inter = await fake.send_slash("imagine", {"prompt": "a pear"}, user_install=True)
        made = await wait_result(inter)
        assert fake.files_of(made)  # delivered as the interaction's answer
        [row] = await bot.quotas.audit(0)  # charged to the DM allowance, not to the server
        assert row.cost_cents > 0
        edited = await wait_result(await fake.send_slash("edit", {"prompt": "blue"}, user_install=True))
        assert fake.files_of(edited), text(edited)  # the member's own latest result, from my records
        elsewhere = fake._add_text_channel("elsewhere", nsfw=False)  # no result of ours there
        inter = await fake.send_slash("edit", {"prompt": "blue"}, channel_id=elsewhere, user_install=True)
        refused = await wait_result(inter)
        assert "I cannot read this conversation" in text(refused)
        assert not [r for r in fake.requests if r.method == "GET" and r.path.endswith("/messages")]
