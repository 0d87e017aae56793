"""Images on Discord as job inputs: attachments checked by their declared size and fetched only once a
job is admitted, the newest image of ours in a channel, and an output image fetched back from its message."""

from __future__ import annotations

import asyncio

import discord

from bot.errors import ImageTooLarge, InputError
from bot.i18n import Bytes, Text
from bot.jobs.spec import PendingInput, RawInput
from bot.storage.turns import TurnRecord, TurnStore
from bot.ui.types import Client

HISTORY_SCAN = 50
#: How long a just-posted result of ours may take to be linked to its turn (steps × seconds): the
#: link is written just after Discord took the message, so a fast reply or menu can arrive first.
LINK_WAIT_STEPS, LINK_WAIT_STEP = 15, 0.2
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp")


def check_declared(attachment: discord.Attachment, max_bytes: int) -> None:
    """Refuse an attachment by the size Discord declares for it (nothing is downloaded)."""
    if attachment.size > max_bytes:
        raise ImageTooLarge(
            Text(
                "create.attachment.too_large",
                name=attachment.filename,
                size=Bytes(attachment.size),
                limit=Bytes(max_bytes),
            )
        )
    if attachment.size == 0:
        raise InputError(Text("create.attachment.empty", name=attachment.filename))


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
        raise InputError(
            Text("create.attachment.download_failed", name=attachment.filename, status=e.status)
        ) from e
    if len(data) > max_bytes:
        raise ImageTooLarge(
            Text("create.attachment.over_limit", name=attachment.filename, limit=Bytes(max_bytes))
        )
    return RawInput(data, attachment.filename, attachment.url)


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
        raise InputError(Text("create.latest.unreadable")) from e
    raise InputError(Text("create.latest.none"))


async def refetch_output(bot: Client, turn: TurnRecord, index: int) -> bytes | None:
    """Download output image `index` of a turn again from its Discord message (a fresh URL)."""
    found = await _output_attachment(bot, turn, index)
    return await found.read() if found is not None else None


async def output_url(bot: Client, turn: TurnRecord, index: int) -> str | None:
    """A fresh (signed) URL of output image `index` of a turn, from its Discord message."""
    found = await _output_attachment(bot, turn, index)
    return found.url if found is not None else None


async def _output_attachment(bot: Client, turn: TurnRecord, index: int) -> discord.Attachment | None:
    """Output image `index` of a turn as an attachment of its message, read afresh (URLs expire)."""
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
            return images[index]
    return None


async def turn_of_message(turns: TurnStore, message_id: int, *, ours: bool) -> TurnRecord | None:
    """The turn a message shows. A message of ours without one may be a result whose link is still
    being written: it is looked up again for a few seconds before it counts as a plain image."""
    turn = await turns.by_message(message_id)
    for _ in range(LINK_WAIT_STEPS if turn is None and ours else 0):
        await asyncio.sleep(LINK_WAIT_STEP)
        if (turn := await turns.by_message(message_id)) is not None:
            break
    return turn
