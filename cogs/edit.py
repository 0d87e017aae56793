"""/edit: change an image with an instruction (default: the channel's latest conversation image)."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import InputError
from bot.jobs.service import JobSpec
from bot.jobs.spec import PendingInput, new_seed
from bot.providers.base import MAX_SEED
from bot.ui.attachments import latest_bot_image, pending_attachment
from bot.ui.autocomplete import (
    AUTO,
    edit_ratio_choices,
    model_choices,
    resolution_choices,
    search_choices,
    search_option,
    style_choices,
    thinking_choices,
)
from bot.ui.delivery import bot_present, job_context, to_interaction
from bot.ui.prefs import acknowledge_with_prefs
from bot.ui.references import Given, parse_references
from bot.ui.styles import with_style
from bot.ui.types import Client, Interaction
from bot.ui.upload import open_upload_form
from bot.wiring import services_of


def latest_finder(bot: Client, interaction: Interaction) -> dict[str, Any]:
    """JobSpec arguments to edit the latest image of this channel (the newest result of its
    conversations, else an image of mine in its history), when no image is attached.

    Nothing is looked up or downloaded here: the job does that once the rules have passed.
    """
    cap = services_of(bot).settings.max_input_bytes
    channel = interaction.channel
    me = bot.user
    assert me is not None and isinstance(channel, discord.abc.Messageable)
    if not bot_present(interaction):  # a user install: this channel's history is not mine to read
        return {"find_latest": not_readable}
    turns = services_of(bot).jobs.turns
    return {"find_latest": lambda: latest_bot_image(channel, me, cap, turns)}


async def not_readable() -> PendingInput:
    """The latest image of a channel the bot is not in: there is none it may read."""
    raise InputError("I cannot read this conversation; attach the image to edit with the `image` option")


def input_or_latest(
    bot: Client, interaction: Interaction, image: discord.Attachment | None
) -> dict[str, Any]:
    """JobSpec arguments for the attached image; else for the latest image of this channel."""
    if image is not None:
        return {"inputs": [pending_attachment(image, services_of(bot).settings.max_input_bytes)]}
    return latest_finder(bot, interaction)


class Edit(commands.Cog):
    """The /edit command."""

    def __init__(self, bot: Client) -> None:
        self.bot = bot
        self.services = services_of(bot)

    @app_commands.command(name="edit", description="Edit an image with an instruction")
    @app_commands.describe(
        prompt="What to change",
        image="Image to edit (default: the latest image of this channel's conversation)",
        aspect_ratio="Shape of the result (default auto: keep the input's)",
        resolution="Output size (as the model allows)",
        model="Model to use",
        seed="Same seed, prompt and options: the same result again (default: a random one, shown)",
        thinking="How much the model thinks first (only models that take it)",
        search="Ground the image in Google Search: on or off (only models that have it)",
        references="Reference images: links to messages with images, and image URLs (space-separated)",
        upload="Open a form to upload up to 10 reference images",
        style="A saved style: its words are added to the prompt, its images to the references",
    )
    @app_commands.autocomplete(
        style=style_choices,
        model=model_choices,
        aspect_ratio=edit_ratio_choices,
        resolution=resolution_choices,
        thinking=thinking_choices,
        search=search_choices,
    )
    async def edit(
        self,
        interaction: Interaction,
        prompt: app_commands.Range[str, 1, 4000],
        image: discord.Attachment | None = None,
        aspect_ratio: str = AUTO,
        resolution: str | None = None,
        model: str | None = None,
        seed: app_commands.Range[int, 0, MAX_SEED] | None = None,
        thinking: str | None = None,
        search: str | None = None,
        references: str | None = None,
        upload: bool = False,
        style: str | None = None,
    ) -> None:
        """Defer (or open the upload form), run the job on the image, reply with the result."""
        wants_search = search_option(search)  # a typo is answered at once, before anything else
        links = parse_references(references)
        job = JobSpec(
            kind="edit",
            prompt=prompt,
            model=model,
            aspect_ratio=aspect_ratio,
            resolution=resolution,
            seed=new_seed() if seed is None else seed,
            thinking=(thinking or "").strip().lower() or None,
            search=wants_search,
        )
        given = Given([image] if image is not None else [], links)
        if upload:
            await open_upload_form(interaction, partial(self._run, job, given, style=style))
            return
        await self._run(job, given, interaction, [], None, style=style)

    async def _run(
        self,
        job: JobSpec,
        given: Given,
        interaction: Interaction,
        uploaded: list[discord.Attachment],
        _: str | None,
        *,
        style: str | None = None,
    ) -> None:
        """Answer the interaction, look the references up, hand the job over (the edited image is
        the attached one, else the channel's latest)."""
        job, loading = await acknowledge_with_prefs(interaction, job)  # privately if the member asked
        delivery = to_interaction(interaction, title="✏️ Edit", stem="edit", loading_message_id=loading)
        try:
            inputs = given.inputs(interaction, uploaded)
        except InputError as error:
            await delivery.fail(error)
            return
        found = given.finder(interaction)
        latest = {} if given.attachments else latest_finder(self.bot, interaction)
        job = replace(job, inputs=inputs, find_references=found, **latest, **job_context(interaction))
        if (styled := await with_style(interaction, job, style, delivery)) is not None:
            await self.services.jobs.submit(styled, delivery)


async def setup(bot: Client) -> None:
    """Extension entry point."""
    await bot.add_cog(Edit(bot))
