"""/edit: change an image with an instruction (default: the channel's latest conversation image)."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import NanoBot
from bot.choices import AUTO, edit_ratio_choices, model_choices, resolution_choices
from bot.discord_io import acknowledge, deliver, job_context, latest_bot_image, pending_attachment
from bot.service import JobSpec


def input_or_latest(
    bot: NanoBot, interaction: discord.Interaction[NanoBot], image: discord.Attachment | None
) -> dict[str, Any]:
    """JobSpec arguments for the attached image; else for the latest image of this channel (the newest
    result of its conversations, else an image of mine in its history).

    Nothing is looked up or downloaded here: the job does that once the rules have passed.
    """
    cap = bot.settings.max_input_bytes
    if image is not None:
        return {"inputs": [pending_attachment(image, cap)]}
    channel = interaction.channel
    me = bot.user
    assert me is not None and isinstance(channel, discord.abc.Messageable)
    turns = bot.service.turns
    return {"find_latest": lambda: latest_bot_image(channel, me, cap, turns)}


class Edit(commands.Cog):
    """The /edit command."""

    def __init__(self, bot: NanoBot) -> None:
        self.bot = bot

    @app_commands.command(name="edit", description="Edit an image with an instruction")
    @app_commands.describe(
        prompt="What to change",
        image="Image to edit (default: the latest image of this channel's conversation)",
        aspect_ratio="Shape of the result (default auto: keep the input's)",
        resolution="Output size (as the model allows)",
        model="Model to use",
    )
    @app_commands.autocomplete(
        model=model_choices, aspect_ratio=edit_ratio_choices, resolution=resolution_choices
    )
    async def edit(
        self,
        interaction: discord.Interaction[NanoBot],
        prompt: app_commands.Range[str, 1, 4000],
        image: discord.Attachment | None = None,
        aspect_ratio: str = AUTO,
        resolution: str | None = None,
        model: str | None = None,
    ) -> None:
        """Defer, fetch the input, run the job, reply with the result."""
        loading = await acknowledge(interaction)
        job = JobSpec(
            kind="edit",
            prompt=prompt,
            **input_or_latest(self.bot, interaction, image),
            model=model,
            aspect_ratio=aspect_ratio,
            resolution=resolution,
            **job_context(interaction),
        )
        result = await self.bot.service.run(job)
        await deliver(self.bot, interaction, result, title="✏️ Edit", stem="edit", loading_message_id=loading)


async def setup(bot: NanoBot) -> None:
    """Extension entry point."""
    await bot.add_cog(Edit(bot))
