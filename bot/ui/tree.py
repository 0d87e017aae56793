"""The app-command tree and its one error handler: a specific ephemeral message, the traceback logged."""

from __future__ import annotations

import logging

from discord import app_commands

from bot.config import Settings
from bot.errors import NanoBotError
from bot.ui.delivery import send_error
from bot.ui.types import Client, Interaction

log = logging.getLogger(__name__)

#: Seconds an interaction token stays valid at Discord, for a client that carries no settings.
DISCORD_TOKEN_LIFETIME = 900.0


def token_lifetime(client: object) -> float:
    """The interaction-token lifetime the client's settings give (Discord's 15 minutes without settings)."""
    settings = getattr(client, "settings", None)  # read, not imported: bot.app is for the entry points
    return settings.interaction_token_lifetime if isinstance(settings, Settings) else DISCORD_TOKEN_LIFETIME


class NanoTree(app_commands.CommandTree[Client]):
    """discord.py's command tree whose on_error answers every failed slash command and context menu."""

    async def on_error(self, interaction: Interaction, error: app_commands.AppCommandError, /) -> None:
        """Our errors are logged as one line, anything else with its traceback; the user always hears."""
        cause = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        if isinstance(cause, NanoBotError):
            log.info("command %s failed: %s", interaction.command and interaction.command.name, cause.message)
        else:
            log.error("command failed", exc_info=cause)
        await send_error(interaction, cause, lifetime=token_lifetime(self.client))
