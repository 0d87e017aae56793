"""Telling members that a job of theirs was interrupted (by a restart or a shutdown) and refunded:
a mention in the job's channel, in its server's language."""

from __future__ import annotations

import logging

import discord

from bot.i18n import Text, t
from bot.jobs.recovery import Orphan
from bot.ui.locale import guild_locale
from bot.ui.outcomes import kind_words
from bot.ui.types import Client

log = logging.getLogger(__name__)


async def tell_interrupted(client: Client, orphans: list[Orphan], why: str = "restart") -> None:
    """One notice per interrupted job that has a channel (`why`: "restart" or "shutdown")."""
    mentions = discord.AllowedMentions(users=True, roles=False, everyone=False)
    for orphan in orphans:
        if orphan.channel_id is None:
            continue
        channel = client.get_channel(orphan.channel_id)
        stage = Text(f"app.stage.{orphan.stage}") if orphan.stage in ("queued", "running") else ""
        text = t(
            guild_locale(getattr(channel, "guild", None)),
            "app.interrupted",
            member=f"<@{orphan.user_id}>",
            kind=kind_words(orphan.kind),
            stage=stage,
            why=Text(f"app.why.{why}"),
        )
        try:
            await client.get_partial_messageable(orphan.channel_id).send(text, allowed_mentions=mentions)
        except discord.HTTPException as e:
            log.warning("could not tell user %s about an interrupted job (%s)", orphan.user_id, e.status)
