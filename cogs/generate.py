"""/imagine: make images from a prompt and reference images (attachments, message links, URLs, a form)."""

from __future__ import annotations

from functools import partial

import discord
from discord import app_commands
from discord.app_commands import locale_str
from discord.ext import commands

from bot.i18n import Text
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
from bot.ui.prefs import COUNT_NOT_GIVEN
from bot.ui.references import Given, parse_references
from bot.ui.run import run_job
from bot.ui.types import Client, Interaction
from bot.ui.upload import open_upload_form
from bot.wiring import services_of


class Generate(commands.Cog):
    """The /imagine command."""

    def __init__(self, bot: Client) -> None:
        self.bot = bot
        self.services = services_of(bot)

    @app_commands.command(name=locale_str("imagine"), description=locale_str("Make images from a prompt"))
    @app_commands.describe(
        prompt=locale_str("What to draw"),
        aspect_ratio=locale_str("Shape of the image (default: your /prefs, else 1:1)"),
        resolution=locale_str("Output size (0.5K, 1K, 2K, 4K as the model allows)"),
        model=locale_str("Model to use (default: the first configured)"),
        count=locale_str("How many images (1-4)"),
        image=locale_str("Reference image"),
        image2=locale_str("Second reference image"),
        image3=locale_str("Third reference image"),
        references=locale_str(
            "More references: links to messages with images, and image URLs (space-separated)"
        ),
        upload=locale_str("Open a form to upload up to 10 more reference images"),
        seed=locale_str("Same seed, prompt and options: the same image again (default: a random one, shown)"),
        thinking=locale_str("How much the model thinks first (only models that take it)"),
        search=locale_str("Ground the image in Google Search: on or off (only models that have it)"),
        style=locale_str("A saved style: its words are added to the prompt, its images to the references"),
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
        run = partial(run_job, job, given, title=Text("create.title.imagine"), stem="imagine", style=style)
        if upload:
            await open_upload_form(interaction, run)
            return
        await run(interaction, [], None)


async def setup(bot: Client) -> None:
    """Extension entry point."""
    await bot.add_cog(Generate(bot))
