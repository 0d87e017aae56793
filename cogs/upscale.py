"""/upscale: enlarge an image x2 or x4 (an upscale-capable provider, else the built-in upscaler)."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

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

    @app_commands.command(name="upscale", description="Enlarge an image")
    @app_commands.describe(
        image="Image to upscale (default: my latest image in this channel)",
        factor="How much larger",
    )
    @app_commands.choices(
        factor=[app_commands.Choice(name="x2", value=2), app_commands.Choice(name="x4", value=4)]
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
        delivery = to_interaction(
            interaction, title=f"⬆️ Upscale x{factor}", stem="upscale", loading_message_id=loading
        )
        await self.services.jobs.submit(job, delivery)


async def setup(bot: Client) -> None:
    """Extension entry point."""
    await bot.add_cog(Upscale(bot))
