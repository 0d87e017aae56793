"""/prefs: a member's own defaults for /imagine and /edit (model, shape, size, count, a prompt suffix,
private results), kept across servers; every answer is private."""

from __future__ import annotations

from discord import app_commands
from discord.app_commands import locale_str
from discord.ext import commands

from bot.errors import InputError
from bot.i18n import Text
from bot.storage.prefs import MAX_SUFFIX, MemberPrefs
from bot.ui.autocomplete import model_choices, ratio_choices, resolution_choices
from bot.ui.locale import user_locale
from bot.ui.prefs import check_prefs, prefs_embed
from bot.ui.types import Client, Interaction
from bot.wiring import services_of

#: Typed in place of a value, clears that one preference.
CLEAR = "none"


def cleared(value: str | None) -> str | None:
    """A text option as a change: None (not given), "" (clear it) or the value."""
    if value is None:
        return None
    value = value.strip()
    return "" if value.lower() == CLEAR else value


class Prefs(commands.Cog):
    """The /prefs group."""

    group = app_commands.Group(
        name=locale_str("prefs"), description=locale_str("Your own defaults for /imagine and /edit")
    )

    def __init__(self, bot: Client) -> None:
        self.bot = bot
        self.services = services_of(bot)

    @group.command(
        name=locale_str("set"),
        description=locale_str("Set your defaults (options you give a command still win)"),
    )
    @app_commands.describe(
        model=locale_str("Model for your jobs (none: the server's default)"),
        aspect_ratio=locale_str("Shape of your /imagine images (none: 1:1)"),
        resolution=locale_str("Output size (none: the model's default)"),
        count=locale_str("How many images /imagine makes (1-4)"),
        prompt_suffix=locale_str("Words added to every prompt after a comma (none: nothing)"),
        private=locale_str("Results only you see (ephemeral messages that vanish when Discord reloads)"),
    )
    @app_commands.autocomplete(model=model_choices, aspect_ratio=ratio_choices, resolution=resolution_choices)
    async def set_(
        self,
        interaction: Interaction,
        model: str | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        count: app_commands.Range[int, 1, 4] | None = None,
        prompt_suffix: app_commands.Range[str, 1, MAX_SUFFIX] | None = None,
        private: bool | None = None,
    ) -> None:
        """Change the given preferences only, checked against the model they will run on."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        changes: dict[str, object] = {}
        for key, text in (("model", model), ("aspect_ratio", aspect_ratio), ("resolution", resolution)):
            if (value := cleared(text)) is not None:
                changes[key] = value or None
        if (suffix := cleared(prompt_suffix)) is not None:
            changes["prompt_suffix"] = suffix
        if count is not None:
            changes["count"] = count
        if private is not None:
            changes["private"] = private
        if not changes:
            raise InputError(Text("prefs.nothing_given"))
        store = self.services.prefs
        current = await store.get(interaction.user.id)
        prefs = MemberPrefs.model_validate({**current.model_dump(), **changes})
        check_prefs(self.services, prefs)
        await store.set(interaction.user.id, prefs)
        embed = prefs_embed(prefs, user_locale(interaction), Text("prefs.title.saved"))
        await interaction.followup.send(embed=embed, ephemeral=True)

    @group.command(name=locale_str("show"), description=locale_str("Show your defaults"))
    async def show(self, interaction: Interaction) -> None:
        """The member's preferences, privately."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        prefs = await self.services.prefs.get(interaction.user.id)
        await interaction.followup.send(embed=prefs_embed(prefs, user_locale(interaction)), ephemeral=True)

    @group.command(name=locale_str("reset"), description=locale_str("Forget your defaults"))
    async def reset(self, interaction: Interaction) -> None:
        """Clear every preference of the member."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        had = await self.services.prefs.reset(interaction.user.id)
        title = Text("prefs.title.cleared" if had else "prefs.title.none")
        embed = prefs_embed(MemberPrefs(), user_locale(interaction), title)
        await interaction.followup.send(embed=embed, ephemeral=True)


async def setup(bot: Client) -> None:
    """Extension entry point."""
    await bot.add_cog(Prefs(bot))
