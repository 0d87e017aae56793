"""Where each command may be installed and offered: servers always; the bot's DMs for some (ALLOW_DMS);
a member's own account for the image commands (USER_INSTALL)."""

from __future__ import annotations

from typing import Any

from discord import app_commands

from bot.config import Settings

#: Commands that may be offered in the bot's DMs (when ALLOW_DMS is on); every other is server-only.
DM_CAPABLE = frozenset(
    {
        "imagine",
        "edit",
        "upscale",
        "usage",
        "Edit image",  # i18n: not a message
        "Upscale image",  # i18n: not a message
        "forget",
        "show",
        "history",
        "prefs",
        "help",
    }
)
#: Commands members may also add to their own account (USER_INSTALL): they answer only through the
#: interaction, so they work where the bot is not a member.
USER_INSTALLABLE = frozenset({"imagine", "edit", "upscale", "forget"})


def declare_contexts(tree: app_commands.CommandTree[Any], settings: Settings) -> None:
    """Give every command explicit installs and contexts: installed to servers; offered in servers,
    and in the bot's DMs only for DM_CAPABLE commands when ALLOW_DMS is on. With USER_INSTALL the
    USER_INSTALLABLE ones may also be added to a member's account and used in any DM or group DM."""
    for command in tree.get_commands():
        user = settings.user_install and command.name in USER_INSTALLABLE
        dms = user or (settings.allow_dms and command.name in DM_CAPABLE)
        command.allowed_installs = app_commands.AppInstallationType(guild=True, user=user)
        command.allowed_contexts = app_commands.AppCommandContext(
            guild=True, dm_channel=dms, private_channel=user
        )
        command.guild_only = not dms
