"""Channels of the fake server as the bot sees them: a new text channel, and one hidden from @everyone
but shown to one member (the bot's cache knows each change before these return)."""

from __future__ import annotations

import discord

from bot.app import NanoBot
from tests.botenv import eventually
from tests.fakes.discord import FakeDiscord

#: Discord's VIEW_CHANNEL permission bit.
VIEW_CHANNEL = 1 << 10


async def new_channel(fake: FakeDiscord, bot: NanoBot, name: str) -> str:
    """A new text channel of the server, once the bot knows it."""
    channel_id = fake._add_text_channel(name, nsfw=False)
    await fake.gateway.dispatch("CHANNEL_CREATE", fake.channels[channel_id], guild_id=fake.guild_id)
    await eventually(lambda: bot.get_channel(int(channel_id)) is not None, what="the channel known")
    return channel_id


async def hidden_channel(fake: FakeDiscord, bot: NanoBot, name: str, seen_by: str) -> str:
    """A new text channel hidden from @everyone and shown to `seen_by`, once the bot knows its overwrites."""
    channel_id = await new_channel(fake, bot, name)
    fake.channels[channel_id]["permission_overwrites"] = [
        {"id": fake.guild_id, "type": 0, "allow": "0", "deny": str(VIEW_CHANNEL)},
        {"id": fake.users[seen_by]["id"], "type": 1, "allow": str(VIEW_CHANNEL), "deny": "0"},
    ]
    await fake.gateway.dispatch("CHANNEL_UPDATE", fake.channels[channel_id], guild_id=fake.guild_id)
    await eventually(lambda: _overwrites_known(bot, channel_id), what="the overwrites known")
    return channel_id


def _overwrites_known(bot: NanoBot, channel_id: str) -> bool:
    """Whether the bot's cache has the channel's two permission overwrites."""
    channel = bot.get_channel(int(channel_id))
    return isinstance(channel, discord.TextChannel) and len(channel.overwrites) == 2
