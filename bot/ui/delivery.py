"""Discord I/O for jobs: reading input attachments, finding the latest bot image, delivering results."""

from __future__ import annotations

import io
import logging
from typing import Any

import discord

from bot.errors import DeliveryFailed, ImageTooLarge, InputError
from bot.jobs.spec import JobResult, PendingInput, Posted, RawInput
from bot.jobs.supervisor import Progress, ProgressHook
from bot.storage.turns import TurnRecord, TurnStore
from bot.ui.buttons import cancel_view, result_view
from bot.ui.embeds import error_embed, result_embed
from bot.ui.types import Client, Interaction
from bot.wiring import services_of

log = logging.getLogger(__name__)

HISTORY_NOTE = "Earlier turns were left out (history depth {depth})."

HISTORY_SCAN = 50
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp")


def _megabytes(size: int) -> str:
    """A byte count as MB with one decimal."""
    return f"{size / 1048576:.1f} MB"


def check_declared(attachment: discord.Attachment, max_bytes: int) -> None:
    """Refuse an attachment by the size Discord declares for it (nothing is downloaded)."""
    if attachment.size > max_bytes:
        raise ImageTooLarge(
            f"{attachment.filename} is {_megabytes(attachment.size)}; the limit is {_megabytes(max_bytes)}"
        )
    if attachment.size == 0:
        raise InputError(f"{attachment.filename} is empty (0 bytes)")


def pending_attachment(attachment: discord.Attachment, max_bytes: int) -> PendingInput:
    """An attachment as a job input that is downloaded only once the job has been admitted."""
    check_declared(attachment, max_bytes)
    return PendingInput(
        name=attachment.filename,
        fetch=lambda: read_attachment(attachment, max_bytes),
        size=attachment.size,
        width=attachment.width,
        height=attachment.height,
        url=attachment.url,
    )


async def read_attachment(attachment: discord.Attachment, max_bytes: int) -> RawInput:
    """Download an attachment, refusing it by its declared size before any byte is fetched."""
    check_declared(attachment, max_bytes)
    try:
        data = await attachment.read()
    except discord.HTTPException as e:
        raise InputError(f"{attachment.filename} could not be downloaded from Discord ({e.status})") from e
    if len(data) > max_bytes:
        raise ImageTooLarge(f"{attachment.filename} is over the {_megabytes(max_bytes)} limit")
    return RawInput(data, attachment.filename, attachment.url)


async def acknowledge(interaction: Interaction) -> int | None:
    """Defer with a public "thinking…" message before any I/O; return that message's id."""
    callback = await interaction.response.defer(thinking=True)
    interaction.extras["loading_public"] = True
    return callback.message_id if callback is not None else None


def is_image_attachment(attachment: discord.Attachment) -> bool:
    """Whether an attachment looks like an image by its type or name."""
    kind = attachment.content_type or ""
    return kind.startswith("image/") or attachment.filename.lower().endswith(IMAGE_EXTENSIONS)


async def latest_bot_image(
    channel: discord.abc.Messageable, bot_user: discord.abc.User, max_bytes: int, turns: TurnStore | None
) -> PendingInput:
    """The newest image the bot posted in this channel (fresh URLs: the history was just fetched),
    passing over results that were deleted (Discord may have kept a message whose deletion failed)."""
    try:
        async for message in channel.history(limit=HISTORY_SCAN):
            if message.author.id != bot_user.id:
                continue
            if turns is not None and (turn := await turns.by_message(message.id)) and turn.status != "done":
                continue
            for attachment in message.attachments:
                if is_image_attachment(attachment):
                    return pending_attachment(attachment, max_bytes)
    except discord.Forbidden as e:
        raise InputError("I cannot read this channel's history; attach an image instead") from e
    raise InputError("There is no image of mine in this channel yet; attach one with the `image` option")


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
        "guild_id": interaction.guild_id,
        "channel_id": interaction.channel_id or 0,
        "user_id": user.id,
        "role_ids": tuple(r.id for r in user.roles) if isinstance(user, discord.Member) else (),
        "channel_nsfw": bool(getattr(channel, "nsfw", False)),
        "upload_limit": interaction.filesize_limit,
    }


def progress_reporter(interaction: Interaction, lifetime: float) -> ProgressHook:
    """Shows the queue position or the running time in the "thinking…" message, with ❌ Cancel."""

    async def report(progress: Progress) -> None:
        if token_expired(interaction, lifetime):
            return
        if progress.state == "queued":
            eta = f", about {progress.eta:.0f} s" if progress.eta is not None else ""
            text = f"⏳ Queued: position {progress.position}{eta}"
        else:
            text = f"🎨 Working with {progress.provider}… {progress.elapsed:.0f} s"
            if progress.charged:
                text += "\nThe image service has the request: cancelling now stops the result but is charged."
        view = cancel_view(progress.job_id, charged=progress.charged)
        await interaction.edit_original_response(content=text, view=view)

    return report


def _lifetime(interaction: Interaction) -> float:
    """How long this bot treats interaction tokens as valid (INTERACTION_TOKEN_LIFETIME)."""
    return services_of(interaction.client).settings.interaction_token_lifetime


def to_interaction(
    interaction: Interaction, *, title: str, stem: str, loading_message_id: int | None
) -> InteractionDelivery:
    """The delivery of a job started by this interaction."""
    return InteractionDelivery(
        interaction,
        title=title,
        stem=stem,
        loading_message_id=loading_message_id,
        lifetime=_lifetime(interaction),
    )


class InteractionDelivery:
    """Delivers a job started by an interaction (command, menu, button, modal): the result replaces
    the "thinking…" message (posted in the channel once the token has expired), errors are private."""

    def __init__(
        self,
        interaction: Interaction,
        *,
        title: str,
        stem: str,
        loading_message_id: int | None,
        lifetime: float,
    ) -> None:
        self.interaction = interaction
        self.title = title
        self.stem = stem
        self.loading_message_id = loading_message_id
        self.lifetime = lifetime

    async def deliver(self, result: JobResult) -> Posted | None:
        """Post the result; Discord's refusals become DeliveryFailed (the user is then told why)."""
        try:
            message = await _post_result(self, result)
        except (discord.HTTPException, discord.RateLimited) as e:
            log.warning("Discord refused the result of turn %s (%s): %s", result.turn_id, _status(e), e)
            raise delivery_error(e) from e
        return None if message is None else Posted(message.channel.id, (message.id,))

    async def fail(self, error: BaseException) -> None:
        """The specific private error message."""
        await send_error(self.interaction, error, lifetime=self.lifetime)


class ReplyDelivery:
    """Delivers a job started by a reply to one of our images: the result and errors are replies."""

    def __init__(self, message: discord.Message, *, title: str, stem: str, history_depth: int) -> None:
        self.message = message
        self.title = title
        self.stem = stem
        self.history_depth = history_depth

    async def deliver(self, result: JobResult) -> Posted | None:
        """Reply with the images (saying when earlier turns were left out of the history)."""
        embed = result_embed(result, self.title)
        if result.history_cut:
            embed.set_footer(text=HISTORY_NOTE.format(depth=self.history_depth))
        extra: dict[str, Any] = {}
        if (view := result_view(result.turn_id)) is not None:
            extra["view"] = view
        try:
            files = result_files(result, self.stem)
            sent = await self.message.reply(embed=embed, files=files, mention_author=False, **extra)
        except (discord.HTTPException, discord.RateLimited) as e:
            log.warning("could not post a refine result: %s", e)
            raise delivery_error(e) from e
        return Posted(sent.channel.id, (sent.id,))

    async def fail(self, error: BaseException) -> None:
        """Reply with the error (never raising: a short text may still go when images did not)."""
        try:
            await self.message.reply(embed=error_embed(error), mention_author=False)
        except discord.HTTPException:
            log.warning("could not reply to message %s", self.message.id)


def _status(error: discord.HTTPException | discord.RateLimited) -> int:
    """The HTTP status Discord answered (429 for discord.py's own rate-limit refusal)."""
    return error.status if isinstance(error, discord.HTTPException) else 429


def delivery_error(error: discord.HTTPException | discord.RateLimited) -> DeliveryFailed:
    """Why Discord would not take a finished result, in words a user can act on."""
    status = _status(error)
    charge = "Nothing was charged"
    if status == 429:
        wait = error.retry_after if isinstance(error, discord.RateLimited) else None
        when = f"in {wait:.0f} s" if wait is not None and wait >= 1 else "in a minute"
        text = f"Discord is rate limiting this bot and would not take your image. {charge}; try again {when}."
        return DeliveryFailed(text, status=status, retry_after=wait)
    if status >= 500:
        text = f"Discord could not take your image right now (HTTP {status}). {charge}; please try again."
    elif status == 403:
        text = f"I am not allowed to post images here (HTTP 403). {charge}; an admin can fix my permissions."
    else:
        text = f"Discord refused to take your image (HTTP {status}). {charge}; please try again."
    return DeliveryFailed(text, status=status)


async def _post_result(delivery: InteractionDelivery, result: JobResult) -> discord.Message | None:
    """Replace the "thinking…" message with the result; past the token's life, post in the channel."""
    interaction, stem = delivery.interaction, delivery.stem
    embed = result_embed(result, delivery.title)
    view = result_view(result.turn_id)
    if not token_expired(interaction, delivery.lifetime):
        try:
            return await interaction.edit_original_response(
                content=None, embed=embed, attachments=result_files(result, stem), view=view
            )
        except discord.HTTPException as e:
            if e.status not in (401, 404):
                raise
            log.info("interaction token no longer valid (%s); posting in the channel", e.code)
    files = result_files(result, stem)
    return await post_in_channel(interaction, embed, files, delivery.loading_message_id, view)


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
    """An ephemeral, specific error (in the channel once the token is `lifetime` seconds old)."""
    embed = error_embed(error)
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(embed=embed, ephemeral=True)
            return
        if token_expired(interaction, lifetime):
            await post_in_channel(interaction, embed, [], None)
            return
        if interaction.extras.get("loading_public"):
            # A public "thinking…" message cannot turn ephemeral: remove it, then answer privately.
            await interaction.delete_original_response()
        await interaction.followup.send(embed=embed, ephemeral=True)
    except discord.HTTPException:
        log.exception("could not tell the user about an error in interaction %s", interaction.id)


async def refetch_output(bot: Client, turn: TurnRecord, index: int) -> bytes | None:
    """Download output image `index` of a turn again from its Discord message (a fresh URL)."""
    for message_id in turn.message_ids:
        try:
            channel = bot.get_channel(turn.channel_id) or await bot.fetch_channel(turn.channel_id)
            if not isinstance(channel, discord.abc.Messageable):
                return None
            message = await channel.fetch_message(message_id)
        except (discord.NotFound, discord.Forbidden):
            continue
        images = [a for a in message.attachments if is_image_attachment(a)]
        if index < len(images):
            return await images[index].read()
    return None
