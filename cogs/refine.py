"""Reply to a bot image to refine it: the reply continues that image's conversation (and branches)."""

from __future__ import annotations

import logging
import re

import discord
from discord.ext import commands

from bot.errors import InputError, NanoBotError
from bot.i18n import Text, t
from bot.jobs.checks import GONE
from bot.jobs.prompts import REFINE
from bot.jobs.service import DISCORD_FILE_LIMIT, JobInput, JobSpec
from bot.storage.turns import TurnRecord
from bot.ui.attachments import is_image_attachment, pending_attachment, turn_of_message
from bot.ui.delivery import ReplyDelivery, age_restricted
from bot.ui.embeds import error_embed
from bot.ui.locale import message_locale
from bot.ui.types import Client
from bot.wiring import services_of

log = logging.getLogger(__name__)


class Refine(commands.Cog):
    """Listens for replies to the bot's images."""

    def __init__(self, bot: Client) -> None:
        self.bot = bot
        self.services = services_of(bot)

    async def cog_load(self) -> None:
        """Say at start what users must do when the bot cannot read replies."""
        if not self.services.settings.message_content_intent:
            log.warning(
                "MESSAGE_CONTENT_INTENT is off: to refine an image, users must mention the bot in "
                "their reply (or leave the reply ping on); plain replies are invisible to the bot"
            )

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """A reply to one of our image messages becomes a refine turn."""
        reference = message.reference
        if message.author.bot or reference is None or reference.message_id is None:
            return
        turn = await self._turn_of(message, reference.message_id)
        if turn is None or not turn.output_images:
            return  # not one of our images
        if turn.status == "deleted":  # a stale view of a result its owner deleted: say so, use nothing
            await self._reply(message, embed=error_embed(InputError(GONE), message_locale(message)))
            return
        if turn.status != "done":
            return
        instruction = self._instruction(message)
        images = [a for a in message.attachments if is_image_attachment(a)]
        if not instruction and not images:
            if self._mentions_me(message):
                await self._reply(message, content=t(message_locale(message), "refine.hint"))
            return
        await self._refine(message, turn, instruction, images)

    async def _turn_of(self, message: discord.Message, message_id: int) -> TurnRecord | None:
        """The turn shown by the replied-to message; a reply can race the linking of a fresh result."""
        replied = message.reference.resolved if message.reference else None
        ours = isinstance(replied, discord.Message) and self.bot.user is not None
        ours = ours and replied.author.id == self.bot.user.id  # type: ignore[union-attr]
        return await turn_of_message(self.services.turns, message_id, ours=ours)

    def _mentions_me(self, message: discord.Message) -> bool:
        """Whether the message mentions the bot (a mention or the reply ping)."""
        return self.bot.user is not None and any(u.id == self.bot.user.id for u in message.mentions)

    def _instruction(self, message: discord.Message) -> str:
        """The reply's text without mentions of the bot."""
        if self.bot.user is None:
            return message.content.strip()
        return re.sub(rf"<@!?{self.bot.user.id}>", "", message.content).strip()

    async def _refine(
        self, message: discord.Message, turn: TurnRecord, instruction: str, images: list[discord.Attachment]
    ) -> None:
        """Run the refine job and reply with the result (or a specific error), showing its progress
        in a reply of its own meanwhile (with ❌ Cancel).

        The service applies every rule (the continue policy included) before the reply's images
        are downloaded.
        """
        await self._typing(message)
        limit = message.guild.filesize_limit if message.guild else DISCORD_FILE_LIMIT
        settings = self.services.settings
        delivery = ReplyDelivery(
            message, title=Text("refine.title"), stem="refine", history_depth=settings.history_depth
        )
        try:
            inputs: list[JobInput] = [pending_attachment(a, settings.max_input_bytes) for a in images]
        except NanoBotError as e:
            await delivery.fail(e)
            return
        job = JobSpec(
            kind="refine",
            prompt=instruction or REFINE,  # said to the model; never shown
            inputs=inputs,
            parent=turn,
            use_history=True,
            guild_id=message.guild.id if message.guild else None,
            channel_id=message.channel.id,
            user_id=message.author.id,
            role_ids=tuple(r.id for r in getattr(message.author, "roles", ())),
            channel_nsfw=age_restricted(message.channel),
            upload_limit=limit,
            sent_at=message.id,
            progress=delivery.report,
        )
        try:
            await self.services.jobs.submit(job, delivery)
        finally:  # a cancel too: the ❌ click has already said so in the progress reply
            await delivery.close()

    @staticmethod
    async def _typing(message: discord.Message) -> None:
        """Say at once that the bot is on it: "typing…" until the progress reply (or the result)
        is posted, as Discord ends it when the bot posts."""
        try:
            await message.channel.typing()
        except discord.HTTPException:
            log.info("could not show typing in channel %s", message.channel.id)

    async def _reply(
        self, message: discord.Message, *, content: str | None = None, embed: discord.Embed | None = None
    ) -> None:
        """Reply without pinging, never raising."""
        try:
            if embed is not None:
                await message.reply(content=content, embed=embed, mention_author=False)
            else:
                await message.reply(content=content, mention_author=False)
        except discord.HTTPException:
            log.warning("could not reply to message %s", message.id)


async def setup(bot: Client) -> None:
    """Extension entry point."""
    await bot.add_cog(Refine(bot))
