"""Message context menus on any message with an image: "Edit image" (with a modal) and "Upscale image"."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import InputError
from bot.jobs.service import JobInput, JobSpec
from bot.storage.turns import TurnRecord
from bot.ui.attachments import is_image_attachment, pending_attachment, turn_of_message
from bot.ui.delivery import acknowledge, job_context, send_error, to_interaction
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
            raise InputError("That image was deleted, so it cannot be used again.")
    images = [a for a in message.attachments if is_image_attachment(a)]
    if not images:
        raise InputError("That message has no image to work on")
    return [pending_attachment(images[0], services_of(bot).settings.max_input_bytes)], None


class EditModal(discord.ui.Modal, title="Edit image"):
    """Asks for the instruction, then edits (or continues the conversation of) the image."""

    instruction: discord.ui.TextInput[EditModal] = discord.ui.TextInput(
        label="What should change?",
        style=discord.TextStyle.paragraph,
        placeholder="e.g. make the sky purple",
        max_length=2000,
    )

    def __init__(self, bot: Client, target: discord.Message) -> None:
        super().__init__()
        self.bot = bot
        self.services = services_of(bot)
        self.target = target

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
        delivery = to_interaction(interaction, title="✏️ Edit", stem="edit", loading_message_id=loading)
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
            app_commands.ContextMenu(name="Edit image", callback=self.edit_image),
            app_commands.ContextMenu(name="Upscale image", callback=self.upscale_image),
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
            raise InputError("That message has no image to edit")  # known without the database
        await interaction.response.send_modal(EditModal(self.bot, message))

    async def upscale_image(self, interaction: Interaction, message: discord.Message) -> None:
        """Upscale the message's image x2."""
        loading = await acknowledge(interaction)
        inputs, parent = await source_of(self.bot, message)
        job = JobSpec(kind="upscale", inputs=inputs, parent=parent, factor=2, **job_context(interaction))
        delivery = to_interaction(
            interaction, title="⬆️ Upscale x2", stem="upscale", loading_message_id=loading
        )
        await self.services.jobs.submit(job, delivery)


async def setup(bot: Client) -> None:
    """Extension entry point."""
    await bot.add_cog(Menus(bot))
