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


def edit_locale(interaction: Interaction) -> str:
    """The language to reword the message a click came from: a post the bot made by itself in a
    channel (a refine's progress reply) stays in the server's; an answer to an interaction is reworded
    for the member who clicked."""
    message = interaction.message
    if message is not None and message.interaction_metadata is None and not message.flags.ephemeral:
        return guild_locale(interaction.guild)
    return user_locale(interaction)
