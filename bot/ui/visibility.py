"""Which stored results a member may see and re-use here: /show, /history's menu and /style save
from a result all ask the same question, and all get one answer for every refusal (ids cannot be
probed)."""

from __future__ import annotations

import discord

from bot.billing.admission import Who
from bot.errors import InputError, Refused
from bot.i18n import Text
from bot.storage.turns import TurnRecord
from bot.ui.delivery import age_restricted
from bot.ui.references import check_readable
from bot.ui.types import Interaction
from bot.wiring import Services


def not_found() -> Refused:
    """The one answer for an id that is unknown, deleted, forgotten or not the member's to show here."""
    return Refused(Text("visibility.not_found.title"), Text("visibility.not_found.body"))


def may_show(turn: TurnRecord, viewer_id: int, guild_id: int | None, policy: str) -> bool:
    """The requester may show a result anywhere; others only in its server, when the policy allows,
    and never a private one (answered only to its requester)."""
    if turn.user_id == viewer_id:
        return True
    if policy != "server" or turn.options.get("private"):
        return False
    return turn.guild_id is not None and turn.guild_id == guild_id


async def can_read(interaction: Interaction, channel_id: int) -> bool:
    """Whether the member may read the channel a result was made in (a private thread needs its
    membership: a channel hidden from them keeps its results hidden)."""
    guild, user = interaction.guild, interaction.user
    if guild is None or not isinstance(user, discord.Member):
        return False
    channel = guild.get_channel_or_thread(channel_id)
    if channel is None:
        return False
    try:
        await check_readable(channel, user)
    except InputError:
        return False
    return True


def who_of(interaction: Interaction) -> Who:
    """Who is asking, and where, as the server's rules see it."""
    user = interaction.user
    return Who(
        guild_id=interaction.guild_id,
        channel_id=interaction.channel_id or 0,
        user_id=user.id,
        role_ids=tuple(r.id for r in user.roles) if isinstance(user, discord.Member) else (),
        channel_nsfw=age_restricted(interaction.channel),
    )


async def visible_turn(services: Services, interaction: Interaction, turn_id: int | None) -> TurnRecord:
    """The result, when this member may see it here: done, theirs or shown by the policy, from a
    channel they can read, and out of an age-restricted channel only into one. The place's rules apply
    as to a job (nothing is charged)."""
    turn = await services.turns.get(turn_id) if turn_id is not None else None
    mine = turn is not None and turn.user_id == interaction.user.id
    if (
        turn is None
        or turn.status != "done"
        or not turn.output_images
        or not may_show(turn, interaction.user.id, interaction.guild_id, services.settings.show_policy)
        or (not mine and not await can_read(interaction, turn.channel_id))
    ):
        raise not_found()
    if turn.options.get("age_restricted") and not age_restricted(interaction.channel):
        if not mine:
            raise not_found()
        raise Refused(Text("visibility.age_restricted.title"), Text("visibility.age_restricted.body"))
    admission, who = services.jobs.admission, who_of(interaction)
    admission.check_rules(who, await admission.config(interaction.guild_id), turn.prompt)
    await admission.check_not_blocked(who)  # a member a server blocked re-posts nothing there
    return turn
