"""/settings: defaults, channels, blocklist, pace limits, safety, search, previews and the cost rules
(admins)."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.billing.server_rules import normalize, same_phrase
from bot.errors import InputError
from bot.storage.guilds import GuildConfig, GuildSettingsStore
from bot.ui.autocomplete import model_choices
from bot.ui.types import Client, Interaction
from bot.wiring import services_of
from cogs.admin import ADMIN, guild_id_of, require_manager

MAX_BLOCKLIST = 200
#: What each safety level does, as /settings show says it.
SAFETY_SHOWN = {
    "strict": "strict (blocks even a low likelihood of harm)",
    "default": "default (the provider's own filters)",
    "relaxed": "relaxed in age-restricted channels (blocks only a high likelihood); default elsewhere",
}
#: What the search default does, as /settings show says it.
SEARCH_SHOWN = {
    True: "on: images are grounded in Google Search on models that offer it, unless a job turns it off",
    False: "off: only jobs that turn the search option on are grounded",
}


def previews_shown(bot: Client, config: GuildConfig) -> str:
    """Whether thinking models' interim images are shown here, and why not when they are not."""
    if not services_of(bot).settings.live_preview:
        return "off (the bot's operator turned previews off: LIVE_PREVIEW)"
    return "on: thinking models show their interim images" if config.previews else "off"


def store_of(bot: Client) -> GuildSettingsStore:
    """The settings store (exists once the bot is set up)."""
    return services_of(bot).guild_settings


def settings_embed(bot: Client, config: GuildConfig) -> discord.Embed:
    """Everything the server has set, and the cost rules in force."""
    embed = discord.Embed(title="Server settings", colour=discord.Colour.blurple())
    default = config.default_model or "the bot's default"
    if config.default_provider:
        default += f" ({config.default_provider})"
    embed.add_field(name="Default model", value=default)
    channels = ", ".join(f"<#{c}>" for c in config.allowed_channels) or "all channels"
    embed.add_field(name="Allowed channels", value=channels[:1024])
    embed.add_field(name="Age-restricted channels only", value="yes" if config.age_restricted_only else "no")
    embed.add_field(name="Cooldown", value=f"{config.cooldown_seconds} s")
    jobs = config.max_concurrent or services_of(bot).settings.max_concurrent_jobs
    embed.add_field(name="Jobs at once per member", value=str(jobs))
    embed.add_field(name="Cost multiplier", value=f"×{config.cost_multiplier:g}")
    embed.add_field(name="Safety", value=SAFETY_SHOWN[config.safety])
    embed.add_field(name="Google Search", value=SEARCH_SHOWN[config.search_default])
    embed.add_field(name="Live preview", value=previews_shown(bot, config))
    blocked = ", ".join(f"“{p}”" for p in config.blocklist) or "none"
    embed.add_field(name="Blocked phrases", value=blocked[:1024], inline=False)
    embed.add_field(
        name="Cost rules (credits)",
        value="\n".join(services_of(bot).settings.costs.describe())[:1024],
        inline=False,
    )
    return embed


class Settings(commands.Cog):
    """The /settings group."""

    group = app_commands.Group(
        name="settings",
        description="Server settings for image making (admins)",
        default_permissions=ADMIN,
        guild_only=True,
    )

    def __init__(self, bot: Client) -> None:
        self.bot = bot
        self.services = services_of(bot)

    async def _update(self, interaction: Interaction, **changes: object) -> GuildConfig:
        """Apply changes to the server's settings and save them."""
        require_manager(interaction)
        store = store_of(self.bot)
        guild_id = guild_id_of(interaction)
        current = await store.get(guild_id)
        config = GuildConfig.model_validate({**current.model_dump(), **changes})
        await store.put(guild_id, config)
        return config

    @group.command(name="show", description="Show this server's settings and cost rules")
    async def show(self, interaction: Interaction) -> None:
        """Ephemeral summary."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        require_manager(interaction)
        config = await store_of(self.bot).get(guild_id_of(interaction))
        await interaction.followup.send(embed=settings_embed(self.bot, config), ephemeral=True)

    @group.command(name="set", description="Change defaults and limits on pace")
    @app_commands.describe(
        model="Default model for this server",
        cooldown="Seconds a member waits between images",
        jobs_at_once="Jobs one member may run at the same time",
        age_restricted_only="Only allow images in age-restricted channels",
        cost_multiplier="Multiply every job's cost (e.g. 2 to halve what limits allow)",
        safety="How strictly images are filtered (relaxed: in age-restricted channels only)",
        search="Ground images in Google Search by default (on models that offer it)",
        previews="Show thinking models' interim images while they work",
    )
    @app_commands.autocomplete(model=model_choices)
    @app_commands.choices(
        safety=[app_commands.Choice(name=level, value=level) for level in SAFETY_SHOWN],
        search=[app_commands.Choice(name=word, value=word) for word in ("on", "off")],
        previews=[app_commands.Choice(name=word, value=word) for word in ("on", "off")],
    )
    async def set_(
        self,
        interaction: Interaction,
        model: str | None = None,
        cooldown: app_commands.Range[int, 0, 86_400] | None = None,
        jobs_at_once: app_commands.Range[int, 1, 50] | None = None,
        age_restricted_only: bool | None = None,
        cost_multiplier: app_commands.Range[float, 0, 100] | None = None,
        safety: str | None = None,
        search: str | None = None,
        previews: str | None = None,
    ) -> None:
        """Update the given fields only."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        changes: dict[str, object] = {}
        if model is not None:
            provider = self.services.jobs.router.candidates(None, model)[0].name
            changes.update(default_model=model, default_provider=provider)
        for key, value in (
            ("cooldown_seconds", cooldown),
            ("max_concurrent", jobs_at_once),
            ("age_restricted_only", age_restricted_only),
            ("cost_multiplier", cost_multiplier),
            ("safety", safety),
            ("search_default", None if search is None else search == "on"),
            ("previews", None if previews is None else previews == "on"),
        ):
            if value is not None:
                changes[key] = value
        config = await self._update(interaction, **changes)
        await interaction.followup.send(embed=settings_embed(self.bot, config), ephemeral=True)

    @group.command(name="channel", description="Allow or disallow image making in a channel")
    @app_commands.describe(
        channel="The channel", allowed="Allowed (once any channel is allowed, only those are)"
    )
    async def channel(self, interaction: Interaction, channel: discord.TextChannel, allowed: bool) -> None:
        """Edit the allowed-channel list."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        current = await store_of(self.bot).get(guild_id_of(interaction))
        channels = [c for c in current.allowed_channels if c != channel.id] + (
            [channel.id] if allowed else []
        )
        config = await self._update(interaction, allowed_channels=channels)
        await interaction.followup.send(embed=settings_embed(self.bot, config), ephemeral=True)

    @group.command(name="blocklist", description="Add or remove a blocked prompt phrase")
    @app_commands.describe(
        action="Add or remove",
        phrase="Word or phrase (matched ignoring case, accents, look-alike letters and invisible characters)",
    )
    @app_commands.choices(
        action=[
            app_commands.Choice(name="add", value="add"),
            app_commands.Choice(name="remove", value="remove"),
        ]
    )
    async def blocklist(
        self, interaction: Interaction, action: str, phrase: app_commands.Range[str, 1, 100]
    ) -> None:
        """Edit the blocklist; a phrase matching the same prompts as a listed one replaces or removes it."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        require_manager(interaction)
        if action == "add" and not normalize(phrase):
            raise InputError("That phrase is empty once invisible characters are removed")
        current = await store_of(self.bot).get(guild_id_of(interaction))
        phrases = [p for p in current.blocklist if not same_phrase(p, phrase)]
        if action == "add":
            if len(phrases) >= MAX_BLOCKLIST:
                raise InputError(f"The blocklist holds at most {MAX_BLOCKLIST} phrases")
            phrases.append(phrase.strip())
        config = await self._update(interaction, blocklist=phrases)
        await interaction.followup.send(embed=settings_embed(self.bot, config), ephemeral=True)


async def setup(bot: Client) -> None:
    """Extension entry point."""
    await bot.add_cog(Settings(bot))
