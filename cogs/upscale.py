"""/upscale: enlarge an image x2 or x4 (an upscale-capable provider, else the built-in upscaler)."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.app_commands import locale_str
from discord.ext import commands

from bot.i18n import Text
from bot.jobs.service import JobSpec
from bot.ui.delivery import acknowledge, job_context, to_interaction
from bot.ui.types import Client, Interaction
from bot.wiring import services_of
from cogs.edit import input_or_latest


class Upscale(commands.Cog):
    """The /upscale command."""

    def __init__(self, bot: Client) -> None:
        self.bot = bot
        self.services = services_of(bot)

    @app_commands.command(name=locale_str("upscale"), description=locale_str("Enlarge an image"))
    @app_commands.describe(
        image=locale_str("Image to upscale (default: my latest image in this channel)"),
        factor=locale_str("How much larger"),
    )
    @app_commands.choices(
        factor=[
            app_commands.Choice(name=locale_str("x2", key="choice.factor.x2"), value=2),
            app_commands.Choice(name=locale_str("x4", key="choice.factor.x4"), value=4),
        ]
    )
    async def upscale(
        self,
        interaction: Interaction,
        image: discord.Attachment | None = None,
        factor: int = 2,
    ) -> None:
        """Defer, fetch the input, upscale, reply with the result."""
        loading = await acknowledge(interaction)
        job = JobSpec(
            kind="upscale",
            factor=factor,
            **input_or_latest(self.bot, interaction, image),
            **job_context(interaction),
        )
        title = Text("create.title.upscale", factor=factor)
        delivery = to_interaction(interaction, title=title, stem="upscale", loading_message_id=loading)
        await self.services.jobs.submit(job, delivery)


async def setup(bot: Client) -> None:
    """Extension entry point."""
    await bot.add_cog(Upscale(bot))
