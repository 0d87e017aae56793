"""Message context menus on any message with an image: "Edit image" (with a modal) and "Upscale image"."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.app_commands import locale_str
from discord.ext import commands

from bot.errors import InputError
from bot.i18n import Text, t
from bot.jobs.service import JobInput, JobSpec
from bot.storage.turns import TurnRecord
from bot.ui.attachments import is_image_attachment, pending_attachment, turn_of_message
from bot.ui.delivery import acknowledge, job_context, send_error, to_interaction
from bot.ui.locale import user_locale
from bot.ui.types import Client, Interaction
from bot.wiring import services_of


async def source_of(bot: Client, message: discord.Message) -> tuple[list[JobInput], TurnRecord | None]:
    """The message's image: our stored turn when it is one of ours, else its first image attachment.

    A result of ours that was deleted is never worked on again, even if its message is still there.
    Nothing is downloaded here: the job fetches its input once every check has passed.
    """
    ours = bot.user is not None and message.author.id == bot.user.id
    turn = await turn_of_message(services_of(bot).turns, message.id, ours=ours)
    if turn is not None:
        if turn.status == "done" and turn.output_images:
            return [], turn
        if turn.status == "deleted":
            raise InputError(Text("menu.image_deleted"))
    images = [a for a in message.attachments if is_image_attachment(a)]
    if not images:
        raise InputError(Text("menu.no_image"))
    return [pending_attachment(images[0], services_of(bot).settings.max_input_bytes)], None


class EditModal(discord.ui.Modal):
    """Asks for the instruction, then edits (or continues the conversation of) the image."""

    def __init__(self, bot: Client, target: discord.Message, locale: str) -> None:
        super().__init__(title=t(locale, "menu.edit.title"))
        self.bot = bot
        self.services = services_of(bot)
        self.target = target
        self.instruction: discord.ui.TextInput[EditModal] = discord.ui.TextInput(
            label=t(locale, "menu.edit.label"),
            style=discord.TextStyle.paragraph,
            placeholder=t(locale, "menu.edit.placeholder"),
            max_length=2000,
        )
        self.add_item(self.instruction)

    async def on_submit(self, interaction: Interaction) -> None:  # type: ignore[override]
        """Defer, find the image (only now: the modal had to open first), run it like /edit."""
        loading = await acknowledge(interaction)
        inputs, parent = await source_of(self.bot, self.target)
        job = JobSpec(
            kind="refine" if parent is not None else "edit",
            prompt=self.instruction.value,
            inputs=inputs,
            parent=parent,
            use_history=parent is not None,
            aspect_ratio="auto" if parent is None else None,
            **job_context(interaction),
        )
        title = Text("create.title.edit")
        delivery = to_interaction(interaction, title=title, stem="edit", loading_message_id=loading)
        await self.services.jobs.submit(job, delivery)

    async def on_error(  # type: ignore[override]
        self, interaction: Interaction, error: Exception
    ) -> None:
        """Errors get the same specific message as commands."""
        await send_error(interaction, error, lifetime=self.services.settings.interaction_token_lifetime)


class Menus(commands.Cog):
    """Registers the two message context menus."""

    def __init__(self, bot: Client) -> None:
        self.bot = bot
        self.services = services_of(bot)
        self.menus = [
            app_commands.ContextMenu(name=locale_str("Edit image"), callback=self.edit_image),
            app_commands.ContextMenu(name=locale_str("Upscale image"), callback=self.upscale_image),
        ]

    async def cog_load(self) -> None:
        """Add the menus to the command tree."""
        for menu in self.menus:
            self.bot.tree.add_command(menu)

    async def cog_unload(self) -> None:
        """Remove the menus from the command tree."""
        for menu in self.menus:
            self.bot.tree.remove_command(menu.name, type=menu.type)

    async def edit_image(self, interaction: Interaction, message: discord.Message) -> None:
        """Ask for the instruction in a modal at once (a modal must be the first response, and
        Discord's 3 seconds must never wait on the database); the image is looked up on submit."""
        mine = self.bot.user is not None and message.author.id == self.bot.user.id
        if not mine and not any(is_image_attachment(a) for a in message.attachments):
            raise InputError(Text("menu.no_image_to_edit"))  # known without the database
        await interaction.response.send_modal(EditModal(self.bot, message, user_locale(interaction)))

    async def upscale_image(self, interaction: Interaction, message: discord.Message) -> None:
        """Upscale the message's image x2."""
        loading = await acknowledge(interaction)
        inputs, parent = await source_of(self.bot, message)
        job = JobSpec(kind="upscale", inputs=inputs, parent=parent, factor=2, **job_context(interaction))
        title = Text("create.title.upscale", factor=2)
        delivery = to_interaction(interaction, title=title, stem="upscale", loading_message_id=loading)
        await self.services.jobs.submit(job, delivery)


async def setup(bot: Client) -> None:
    """Extension entry point."""
    await bot.add_cog(Menus(bot))
