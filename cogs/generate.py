"""/imagine: make images from a prompt and reference images (attachments, message links, URLs, a form)."""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import InputError
from bot.jobs.service import JobSpec
from bot.jobs.spec import new_seed
from bot.providers.base import MAX_SEED
from bot.ui.autocomplete import (
    model_choices,
    ratio_choices,
    resolution_choices,
    search_choices,
    search_option,
    style_choices,
    thinking_choices,
)
from bot.ui.delivery import job_context, to_interaction
from bot.ui.prefs import COUNT_NOT_GIVEN, acknowledge_with_prefs
from bot.ui.references import Given, parse_references
from bot.ui.styles import with_style
from bot.ui.types import Client, Interaction
from bot.ui.upload import open_upload_form
from bot.wiring import services_of


class Generate(commands.Cog):
    """The /imagine command."""

    def __init__(self, bot: Client) -> None:
        self.bot = bot
        self.services = services_of(bot)

    @app_commands.command(name="imagine", description="Make images from a prompt")
    @app_commands.describe(
        prompt="What to draw",
        aspect_ratio="Shape of the image (default: your /prefs, else 1:1)",
        resolution="Output size (0.5K, 1K, 2K, 4K as the model allows)",
        model="Model to use (default: the first configured)",
        count="How many images (1-4)",
        image="Reference image",
        image2="Second reference image",
        image3="Third reference image",
        references="More references: links to messages with images, and image URLs (space-separated)",
        upload="Open a form to upload up to 10 more reference images",
        seed="Same seed, prompt and options: the same image again (default: a random one, shown)",
        thinking="How much the model thinks first (only models that take it)",
        search="Ground the image in Google Search: on or off (only models that have it)",
        style="A saved style: its words are added to the prompt, its images to the references",
    )
    @app_commands.autocomplete(
        style=style_choices,
        model=model_choices,
        aspect_ratio=ratio_choices,
        resolution=resolution_choices,
        thinking=thinking_choices,
        search=search_choices,
    )
    async def imagine(
        self,
        interaction: Interaction,
        prompt: app_commands.Range[str, 1, 4000],
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        model: str | None = None,
        count: app_commands.Range[int, 1, 4] | None = None,
        image: discord.Attachment | None = None,
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
        references: str | None = None,
        upload: bool = False,
        seed: app_commands.Range[int, 0, MAX_SEED] | None = None,
        thinking: str | None = None,
        search: str | None = None,
        style: str | None = None,
    ) -> None:
        """Defer (or open the upload form), run the job (references are downloaded once it is
        admitted), reply with the images."""
        wants_search = search_option(search)  # a typo is answered at once, before anything else
        links = parse_references(references)
        job = JobSpec(
            kind="imagine",
            prompt=prompt,
            model=model,
            aspect_ratio=aspect_ratio,
            resolution=resolution,
            count=count or COUNT_NOT_GIVEN,
            seed=new_seed() if seed is None else seed,
            thinking=(thinking or "").strip().lower() or None,
            search=wants_search,
        )
        given = Given([a for a in (image, image2, image3) if a is not None], links)
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
        """Answer the interaction, look the references up, hand the job over."""
        job, loading = await acknowledge_with_prefs(interaction, job)  # privately if the member asked
        delivery = to_interaction(interaction, title="🍌 Imagine", stem="imagine", loading_message_id=loading)
        try:
            inputs = given.inputs(interaction, uploaded)
        except InputError as error:
            await delivery.fail(error)
            return
        found = given.finder(interaction)
        job = replace(job, inputs=inputs, find_references=found, **job_context(interaction))
        if (styled := await with_style(interaction, job, style, delivery)) is not None:
            await self.services.jobs.submit(styled, delivery)


async def setup(bot: Client) -> None:
    """Extension entry point."""
    await bot.add_cog(Generate(bot))
