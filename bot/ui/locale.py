"""Which language to answer in: the member's for an interaction, the server's for the bot's own posts."""

from __future__ import annotations

import discord

from bot.ui.types import Interaction


def user_locale(interaction: Interaction) -> str:
    """The Discord locale of the member who used the interaction ("es-ES", "ja", …)."""
    return interaction.locale.value


def guild_locale(guild: discord.Guild | None) -> str:
    """The server's preferred locale for messages the bot posts on its own (a DM: US English)."""
    return guild.preferred_locale.value if guild is not None else discord.Locale.american_english.value


def message_locale(message: discord.Message) -> str:
    """The locale for the bot's answer to a message (a reply-refine): the server's."""
    return guild_locale(message.guild)
