"""/style: save a style (from a result, or from words and images), list, delete and import by code."""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.app_commands import locale_str
from discord.ext import commands

from bot.errors import InputError
from bot.i18n import Text, t
from bot.jobs.prompts import shown_prompt
from bot.storage.styles import MAX_NAME, MAX_WORDS, clean_code
from bot.ui.autocomplete import style_choices
from bot.ui.embeds import inert
from bot.ui.locale import user_locale
from bot.ui.styles import result_for_style, saved_embed, style_images, styles_embed
from bot.ui.types import Client, Interaction
from bot.wiring import services_of
from cogs.admin import require_manager

log = logging.getLogger(__name__)


async def answer_privately(interaction: Interaction) -> None:
    """Defer with a private "thinking…" message (every /style answer is for the member alone)."""
    await interaction.response.defer(ephemeral=True, thinking=True)


class Style(commands.Cog):
    """The /style group."""

    group = app_commands.Group(
        name=locale_str("style"), description=locale_str("Saved styles for /imagine and /edit")
    )

    def __init__(self, bot: Client) -> None:
        self.bot = bot
        self.services = services_of(bot)

    @group.command(
        name=locale_str("save"),
        description=locale_str("Save a style from a result, or from words and images"),
    )
    @app_commands.describe(
        name=locale_str("The style's name (what the style option of /imagine and /edit offers)"),
        job=locale_str(
            "A result's job id: its whole prompt becomes the style words, its images the references"
        ),
        prompt=locale_str(
            "Style words added to every prompt made in this style (replaces a result's prompt)"
        ),
        image=locale_str("Reference image"),
        image2=locale_str("Second reference image"),
        image3=locale_str("Third reference image"),
        server=locale_str("Publish it to this server, for every member (admins: Manage Server)"),
    )
    async def save(
        self,
        interaction: Interaction,
        name: app_commands.Range[str, 1, MAX_NAME],
        job: str | None = None,
        prompt: app_commands.Range[str, 1, MAX_WORDS] | None = None,
        image: discord.Attachment | None = None,
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
        server: bool = False,
    ) -> None:
        """Check the name and the source, store the attachments as images, save the style."""
        await answer_privately(interaction)
        guild_id = interaction.guild_id if server else None
        if server:
            if guild_id is None:
                raise InputError(Text("style.error.server_publish"))
            require_manager(interaction)
        styles = self.services.styles
        await styles.check_free(interaction.user.id, guild_id, name)
        turn = await result_for_style(self.services, interaction, job) if job else None
        attachments = [a for a in (image, image2, image3) if a is not None]
        if turn is None and not prompt and not attachments:
            raise InputError(Text("style.error.nothing"))
        images = await style_images(self.services, turn, attachments)
        words = prompt if prompt is not None else (shown_prompt(turn.prompt) if turn is not None else "")
        origin = turn.user_id if turn is not None else None  # another member's result: theirs too
        style = await styles.create(interaction.user.id, guild_id, name, words, images, origin_id=origin)
        log.info("style %s saved by %s (guild %s)", style.id, interaction.user.id, guild_id or "-")
        await interaction.followup.send(
            embed=saved_embed(style, turn, user_locale(interaction)), ephemeral=True
        )

    @group.command(
        name=locale_str("list"),
        description=locale_str("Your styles and this server's, with their share codes"),
    )
    async def list_(self, interaction: Interaction) -> None:
        """Both lists in one private embed."""
        await answer_privately(interaction)
        found = await self.services.styles.visible(interaction.user.id, interaction.guild_id)
        await interaction.followup.send(embed=styles_embed(found, user_locale(interaction)), ephemeral=True)

    @group.command(
        name=locale_str("delete"),
        description=locale_str("Delete one of your styles (or, admins, a server style)"),
    )
    @app_commands.describe(
        name=locale_str("The style to delete"), server=locale_str("Delete this server's style of that name")
    )
    @app_commands.autocomplete(name=style_choices)
    async def delete(self, interaction: Interaction, name: str, server: bool = False) -> None:
        """Delete it; a server style needs Manage Server (the store checks it again)."""
        await answer_privately(interaction)
        guild_id = interaction.guild_id if server else None
        if server and guild_id is None:
            raise InputError(Text("style.error.server_only"))
        admin = interaction.permissions.manage_guild
        gone = await self.services.styles.delete(interaction.user.id, guild_id, name, admin=admin)
        deleted = "style.deleted.server" if gone.is_server else "style.deleted.own"
        text = t(user_locale(interaction), deleted, name=inert(gone.name))
        await interaction.followup.send(text, ephemeral=True)

    @group.command(
        name=locale_str("import"),
        description=locale_str("Add a style someone shared with you, by its share code"),
    )
    @app_commands.describe(
        code=locale_str("The share code (8 letters and digits)"),
        name=locale_str("Save it under another name"),
    )
    async def import_(
        self,
        interaction: Interaction,
        code: app_commands.Range[str, 1, 20],
        name: app_commands.Range[str, 1, MAX_NAME] | None = None,
    ) -> None:
        """Copy the style into the member's own styles, with a new share code."""
        await answer_privately(interaction)
        style = await self.services.styles.import_code(interaction.user.id, clean_code(code), name)
        await interaction.followup.send(
            embed=saved_embed(style, None, user_locale(interaction)), ephemeral=True
        )


async def setup(bot: Client) -> None:
    """Extension entry point."""
    await bot.add_cog(Style(bot))
