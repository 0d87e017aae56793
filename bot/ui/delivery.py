"""Delivering a job on Discord: acknowledgements, progress, results and errors (interactions, replies)."""

from __future__ import annotations

import contextlib
import io
import logging
from typing import Any

import discord

from bot.errors import DeliveryFailed
from bot.i18n import Text, Words, t
from bot.jobs.spec import JobResult, Posted
from bot.jobs.supervisor import Progress, ProgressHook
from bot.ui.buttons import result_view
from bot.ui.embeds import error_embed, result_embed
from bot.ui.locale import guild_locale, message_locale, user_locale
from bot.ui.preview import board_of, close_previews
from bot.ui.private import is_private, late_error_note, late_note, on_private_message, send_privately
from bot.ui.progress import ReplyProgress, progress_update
from bot.ui.types import Interaction
from bot.wiring import services_of

log = logging.getLogger(__name__)


async def acknowledge(interaction: Interaction, *, private: bool | None = None) -> int | None:
    """Defer with a "thinking…" message before any I/O (ephemeral for a private job: by default, a
    click on a private result); return that message's id."""
    if private is None:
        private = on_private_message(interaction)
    callback = await interaction.response.defer(ephemeral=private, thinking=True)
    interaction.extras["loading_public"] = not private
    interaction.extras["private"] = private
    return callback.message_id if callback is not None else None


def result_files(result: JobResult, stem: str) -> list[discord.File]:
    """The fitted images as discord.File objects."""
    return [
        discord.File(io.BytesIO(f.data), filename=f"{stem}-{n}.{f.ext}")
        for n, f in enumerate(result.files, 1)
    ]


def job_context(interaction: Interaction) -> dict[str, Any]:
    """Where a job comes from and how large its uploads may be (JobSpec keyword arguments)."""
    user = interaction.user
    channel = interaction.channel
    return {
        "progress": progress_reporter(interaction, _lifetime(interaction)),
        "guild_id": rules_guild(interaction),
        "channel_id": interaction.channel_id or 0,
        "user_id": user.id,
        "role_ids": tuple(r.id for r in user.roles) if isinstance(user, discord.Member) else (),
        "channel_nsfw": age_restricted(channel),
        "upload_limit": interaction.filesize_limit,
        "sent_at": interaction.id,
        "private": bool(interaction.extras.get("private")),
    }


def rules_guild(interaction: Interaction) -> int | None:
    """The server whose rules apply: one that added the bot. A server where only the member installed
    it is no server of ours: the DM rules apply there (None)."""
    return interaction.guild_id if interaction.is_guild_integration() else None


def bot_present(interaction: Interaction) -> bool:
    """Whether the bot itself is where the interaction happened (a server that installed it, or its
    own DM): elsewhere (a user install) it may answer the interaction but never post or read."""
    return interaction.is_guild_integration() or interaction.context.dm_channel


def age_restricted(channel: object) -> bool:
    """Whether a channel is age-restricted; a thread asks its parent (is_nsfw), and a channel we know
    nothing about is not."""
    is_nsfw = getattr(channel, "is_nsfw", None)
    return bool(is_nsfw()) if callable(is_nsfw) else False


def progress_reporter(interaction: Interaction, lifetime: float) -> ProgressHook:
    """Shows the queue position or the running time (with a bar of the typical duration) in the
    "thinking…" message, with ❌ Cancel, and the model's interim image while it works (see
    bot/ui/preview.py), in the member's language."""
    board = board_of(interaction)
    locale = user_locale(interaction)

    async def report(progress: Progress) -> None:
        if token_expired(interaction, lifetime):
            return
        async with board.lock:  # the result waits for an edit under way, and none follows it
            if board.closed:
                return
            update = progress_update(progress, board, locale, interaction.filesize_limit)
            if update is not None:  # None: a preview too soon after the last waits for the next
                await interaction.edit_original_response(**update)

    return report


def _lifetime(interaction: Interaction) -> float:
    """How long this bot treats interaction tokens as valid (INTERACTION_TOKEN_LIFETIME)."""
    return services_of(interaction.client).settings.interaction_token_lifetime


def to_interaction(
    interaction: Interaction, *, title: Words, stem: str, loading_message_id: int | None
) -> InteractionDelivery:
    """The delivery of a job started by this interaction."""
    return InteractionDelivery(
        interaction,
        title=title,
        stem=stem,
        loading_message_id=loading_message_id,
        lifetime=_lifetime(interaction),
        private=is_private(interaction),
    )


class InteractionDelivery:
    """Delivers a job started by an interaction (command, menu, button, modal): the result replaces
    the "thinking…" message (posted in the channel once the token has expired), errors are private.

    A private job's "thinking…" message is ephemeral, so its result is too; once the token has
    expired nothing is posted in the channel: the result goes to the member by DM, or, when they
    take no DMs, is kept for /show."""

    def __init__(
        self,
        interaction: Interaction,
        *,
        title: Words,
        stem: str,
        loading_message_id: int | None,
        lifetime: float,
        private: bool = False,
    ) -> None:
        self.interaction = interaction
        self.title = title
        self.stem = stem
        self.loading_message_id = loading_message_id
        self.lifetime = lifetime
        self.private = private

    async def deliver(self, result: JobResult) -> Posted | None:
        """Post the result; Discord's refusals become DeliveryFailed (the user is then told why)."""
        try:
            message = await _post_result(self, result)
        except (discord.HTTPException, discord.RateLimited) as e:
            log.warning("Discord refused the result of turn %s (%s): %s", result.turn_id, _status(e), e)
            raise delivery_error(e) from e
        if message is None and self.private:  # no DM: kept (and charged) for /show, never made public
            log.info("private result of turn %s kept for /show: the member takes no DMs", result.turn_id)
            return Posted(self.interaction.channel_id or 0, ())
        return None if message is None else Posted(message.channel.id, (message.id,))

    async def fail(self, error: BaseException) -> None:
        """The specific private error message."""
        await send_error(self.interaction, error, lifetime=self.lifetime)


class ReplyDelivery:
    """Delivers a job started by a reply to one of our images, in the server's language: a progress
    reply while it waits and runs (removed once the result is posted), then the result as a reply;
    an error takes the progress reply's place (or is a reply of its own)."""

    def __init__(self, message: discord.Message, *, title: Words, stem: str, history_depth: int) -> None:
        self.message = message
        self.title = title
        self.stem = stem
        self.history_depth = history_depth
        self.locale = message_locale(message)
        self.progress = ReplyProgress(message, self.locale)

    async def report(self, progress: Progress) -> None:
        """The job's progress hook: shows where it stands in the progress reply."""
        await self.progress.report(progress)

    async def close(self) -> None:
        """The job has ended (a cancel too): the progress reply is edited no more."""
        await self.progress.close()

    async def deliver(self, result: JobResult) -> Posted | None:
        """Reply with the images (saying when earlier turns were left out of the history), then
        remove the progress reply."""
        await self.progress.close()
        embed = result_embed(result, self.title, self.locale)
        if result.history_cut:
            embed.set_footer(text=t(self.locale, "result.history_cut", depth=self.history_depth))
        extra: dict[str, Any] = {}
        if (view := result_view(result.turn_id, self.locale)) is not None:
            extra["view"] = view
        try:
            files = result_files(result, self.stem)
            sent = await self.message.reply(embed=embed, files=files, mention_author=False, **extra)
        except (discord.HTTPException, discord.RateLimited) as e:
            log.warning("could not post a refine result: %s", e)
            raise delivery_error(e) from e
        await self.progress.remove()
        return Posted(sent.channel.id, (sent.id,))

    async def fail(self, error: BaseException) -> None:
        """Turn the progress reply into the error, else reply with it (never raising: a short text
        may still go when images did not)."""
        embed = error_embed(error, self.locale)
        if await self.progress.show(embed):
            return
        try:
            await self.message.reply(embed=embed, mention_author=False)
        except discord.HTTPException:
            log.warning("could not reply to message %s", self.message.id)


def _status(error: discord.HTTPException | discord.RateLimited) -> int:
    """The HTTP status Discord answered (429 for discord.py's own rate-limit refusal)."""
    return error.status if isinstance(error, discord.HTTPException) else 429


def delivery_error(error: discord.HTTPException | discord.RateLimited) -> DeliveryFailed:
    """Why Discord would not take a finished result, in words a user can act on."""
    status = _status(error)
    if status == 429:
        wait = error.retry_after if isinstance(error, discord.RateLimited) else None
        if wait is not None and wait >= 1:
            text = Text("delivery.rate_limited.seconds", seconds=f"{wait:.0f}")
        else:
            text = Text("delivery.rate_limited.minute")
        return DeliveryFailed(text, status=status, retry_after=wait)
    if status >= 500:
        text = Text("delivery.server_error", status=status)
    elif status == 403:
        text = Text("delivery.forbidden")
    else:
        text = Text("delivery.refused", status=status)
    return DeliveryFailed(text, status=status)


async def _post_result(delivery: InteractionDelivery, result: JobResult) -> discord.Message | None:
    """Replace the "thinking…" message with the result; past the token's life, post in the channel
    (in the server's language) or, for a private job, send it by DM."""
    interaction, stem, title = delivery.interaction, delivery.stem, delivery.title
    await close_previews(interaction)  # the result must not be overwritten by a late preview
    mine = user_locale(interaction)
    if not token_expired(interaction, delivery.lifetime):
        try:
            return await interaction.edit_original_response(
                content=None,
                embed=result_embed(result, title, mine),
                attachments=result_files(result, stem),
                view=result_view(result.turn_id, mine),
            )
        except discord.HTTPException as e:
            if e.status not in (401, 404):
                raise
            log.info("interaction token no longer valid (%s); posting in the channel", e.code)
    files = result_files(result, stem)
    if delivery.private:
        embed, view = result_embed(result, title, mine), result_view(result.turn_id, mine)
        return await send_privately(interaction, late_note(result.turn_id, mine), embed, files, view)
    ours = channel_locale(interaction)
    embed, view = result_embed(result, title, ours), result_view(result.turn_id, ours)
    return await post_in_channel(interaction, embed, files, delivery.loading_message_id, view)


def channel_locale(interaction: Interaction) -> str:
    """The language of what the bot posts by itself where the interaction happened: the server's,
    the member's in a DM."""
    return guild_locale(interaction.guild) if interaction.guild is not None else user_locale(interaction)


def token_expired(interaction: Interaction, lifetime: float) -> bool:
    """Whether the interaction token has outlived its configured lifetime."""
    age = (discord.utils.utcnow() - interaction.created_at).total_seconds()
    return age >= lifetime


async def post_in_channel(
    interaction: Interaction,
    embed: discord.Embed,
    files: list[discord.File],
    reply_to: int | None,
    view: discord.ui.View | None = None,
) -> discord.Message | None:
    """Post with the bot token, replying to the command's message, mentioning the user."""
    if not bot_present(interaction):
        log.info("no channel of mine to post a late result of interaction %s in", interaction.id)
        return None
    channel = interaction.channel
    if channel is None or not isinstance(channel, discord.abc.Messageable):
        log.warning("cannot post a late result: no channel for interaction %s", interaction.id)
        return None
    mentions = discord.AllowedMentions(users=True, roles=False, everyone=False)
    content = interaction.user.mention
    extra: dict[str, Any] = {"view": view} if view is not None else {}
    if reply_to is None:
        return await channel.send(
            content=content, embed=embed, files=files, allowed_mentions=mentions, **extra
        )
    reference = discord.MessageReference(message_id=reply_to, channel_id=channel.id, fail_if_not_exists=False)
    return await channel.send(
        content=content, embed=embed, files=files, reference=reference, allowed_mentions=mentions, **extra
    )


async def send_error(interaction: Interaction, error: BaseException, *, lifetime: float) -> None:
    """An ephemeral, specific error in the member's language (in the channel, in the server's, once
    the token is `lifetime` seconds old)."""
    locale = user_locale(interaction)
    embed = error_embed(error, locale)
    await close_previews(interaction)
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(embed=embed, ephemeral=True)
            return
        if token_expired(interaction, lifetime):
            if is_private(interaction):
                await send_privately(interaction, late_error_note(locale), embed)
            else:
                await post_in_channel(interaction, error_embed(error, channel_locale(interaction)), [], None)
            return
        if interaction.extras.get("loading_public"):
            # A public "thinking…" message cannot turn ephemeral: remove it, then answer privately.
            await interaction.delete_original_response()
        elif is_private(interaction):  # the private "thinking…" becomes the error (no stale progress)
            with contextlib.suppress(discord.NotFound):  # dismissed by the member: a followup then
                await interaction.edit_original_response(content=None, embed=embed, attachments=[], view=None)
                return
        await interaction.followup.send(embed=embed, ephemeral=True)
    except discord.HTTPException:
        log.exception("could not tell the user about an error in interaction %s", interaction.id)
