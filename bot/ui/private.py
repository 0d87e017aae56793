"""Private results: jobs answered with ephemeral messages only the member sees, and what happens
when such an answer comes after Discord has closed the interaction (a DM, never the channel)."""

from __future__ import annotations

import logging
from typing import Any

import discord

from bot.i18n import t
from bot.jobs.ids import job_code
from bot.ui.types import Interaction

log = logging.getLogger(__name__)


def on_private_message(interaction: Interaction) -> bool:
    """Whether the interaction comes from a component of an ephemeral message (a private result)."""
    message = interaction.message
    return message is not None and message.flags.ephemeral


def is_private(interaction: Interaction) -> bool:
    """Whether this interaction's job was acknowledged privately (its answers stay ephemeral)."""
    return bool(interaction.extras.get("private"))


def late_note(turn_id: int | None, locale: str | None = None) -> str:
    """What a late private result says above it in the DM (with the job id /show takes): it could
    not stay ephemeral once the interaction token had expired, so it came by DM instead."""
    if not turn_id:
        return t(locale, "private.late_result.no_code")
    return t(locale, "private.late_result", code=job_code(turn_id))


def late_error_note(locale: str | None = None) -> str:
    """What a late private job's error says above it in the DM."""
    return t(locale, "private.late_error")


async def send_privately(
    interaction: Interaction,
    content: str,
    embed: discord.Embed,
    files: list[discord.File] | None = None,
    view: discord.ui.View | None = None,
) -> discord.Message | None:
    """A private job's late answer by DM to the member, never in the channel; None when the member
    takes no DMs from the bot (Discord answers 403)."""
    extra: dict[str, Any] = {"view": view} if view is not None else {}
    try:
        return await interaction.user.send(content=content, embed=embed, files=files or [], **extra)
    except discord.Forbidden:
        log.info("member %s takes no DMs: a private answer was not sent", interaction.user.id)
        return None
