"""/edit: change an image with an instruction (default: the channel's latest conversation image)."""

from __future__ import annotations

from functools import partial
from typing import Any

import discord
from discord import app_commands
from discord.app_commands import locale_str
from discord.ext import commands

from bot.errors import InputError
from bot.i18n import Text
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
from bot.ui.delivery import bot_present
from bot.ui.references import Given, parse_references
from bot.ui.run import run_job
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
    raise InputError(Text("create.edit.not_readable"))


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

    @app_commands.command(
        name=locale_str("edit"), description=locale_str("Edit an image with an instruction")
    )
    @app_commands.describe(
        prompt=locale_str("What to change"),
        image=locale_str("Image to edit (default: the latest image of this channel's conversation)"),
        aspect_ratio=locale_str("Shape of the result (default auto: keep the input's)"),
        resolution=locale_str("Output size (as the model allows)"),
        model=locale_str("Model to use"),
        seed=locale_str(
            "Same seed, prompt and options: the same result again (default: a random one, shown)"
        ),
        thinking=locale_str("How much the model thinks first (only models that take it)"),
        search=locale_str("Ground the image in Google Search: on or off (only models that have it)"),
        references=locale_str(
            "Reference images: links to messages with images, and image URLs (space-separated)"
        ),
        upload=locale_str("Open a form to upload up to 10 reference images"),
        style=locale_str("A saved style: its words are added to the prompt, its images to the references"),
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
        """Defer (or open the upload form), run the job on the image (the attached one, else the
        channel's latest), reply with the result."""
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
        title = Text("create.title.edit")
        run = partial(run_job, job, given, title=title, stem="edit", style=style, extra=self._latest)
        if upload:
            await open_upload_form(interaction, run)
            return
        await run(interaction, [], None)

    def _latest(self, interaction: Interaction, given: Given) -> dict[str, Any]:
        """Without an attached image, the job edits the channel's latest one."""
        return {} if given.attachments else latest_finder(self.bot, interaction)


async def setup(bot: Client) -> None:
    """Extension entry point."""
    await bot.add_cog(Edit(bot))
