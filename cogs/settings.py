"""/settings: defaults, channels, blocklist, pace limits, safety, search, previews and the cost rules
(admins)."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.app_commands import Choice, locale_str
from discord.ext import commands

from bot.billing.server_rules import normalize, same_phrase
from bot.errors import InputError
from bot.i18n import Text, render, t
from bot.storage.guilds import GuildConfig, GuildSettingsStore
from bot.ui.autocomplete import model_choices
from bot.ui.locale import user_locale
from bot.ui.types import Client, Interaction
from bot.wiring import services_of
from cogs.admin import ADMIN, guild_id_of, require_manager

MAX_BLOCKLIST = 200
#: The safety levels, in the order /settings set offers them (what each does: settings.safety.<level>).
SAFETY_LEVELS = ("strict", "default", "relaxed")
#: The on/off choices of /settings set.
ON_OFF = [
    Choice(name=locale_str("on", key="choice.on_off.on"), value="on"),
    Choice(name=locale_str("off", key="choice.on_off.off"), value="off"),
]


def previews_shown(bot: Client, config: GuildConfig, locale: str) -> str:
    """Whether thinking models' interim images are shown here, and why not when they are not."""
    if not services_of(bot).settings.live_preview:
        return t(locale, "settings.previews.operator_off")
    return t(locale, "settings.previews.on" if config.previews else "settings.previews.off")


def store_of(bot: Client) -> GuildSettingsStore:
    """The settings store (exists once the bot is set up)."""
    return services_of(bot).guild_settings


def settings_embed(bot: Client, config: GuildConfig, locale: str) -> discord.Embed:
    """Everything the server has set, and the cost rules in force, in the member's language."""
    embed = discord.Embed(title=t(locale, "settings.title"), colour=discord.Colour.blurple())
    default = config.default_model or t(locale, "settings.default_model.none")
    if config.default_provider:
        default += f" ({config.default_provider})"
    embed.add_field(name=t(locale, "settings.field.default_model"), value=default)
    channels = ", ".join(f"<#{c}>" for c in config.allowed_channels) or t(locale, "settings.channels.all")
    embed.add_field(name=t(locale, "settings.field.channels"), value=channels[:1024])
    age_only = t(locale, "settings.yes" if config.age_restricted_only else "settings.no")
    embed.add_field(name=t(locale, "settings.field.age_restricted_only"), value=age_only)
    cooldown = t(locale, "settings.seconds", seconds=config.cooldown_seconds)
    embed.add_field(name=t(locale, "settings.field.cooldown"), value=cooldown)
    jobs = config.max_concurrent or services_of(bot).settings.max_concurrent_jobs
    embed.add_field(name=t(locale, "settings.field.jobs_at_once"), value=str(jobs))
    embed.add_field(name=t(locale, "settings.field.cost_multiplier"), value=f"×{config.cost_multiplier:g}")
    embed.add_field(
        name=t(locale, "settings.field.safety"), value=t(locale, f"settings.safety.{config.safety}")
    )
    search = t(locale, "settings.search.on" if config.search_default else "settings.search.off")
    embed.add_field(name=t(locale, "settings.field.search"), value=search)
    embed.add_field(name=t(locale, "settings.field.previews"), value=previews_shown(bot, config, locale))
    blocked = ", ".join(f"“{p}”" for p in config.blocklist) or t(locale, "settings.blocked.none")
    embed.add_field(name=t(locale, "settings.field.blocked"), value=blocked[:1024], inline=False)
    rules = "\n".join(render(line, locale) for line in services_of(bot).settings.costs.describe())
    embed.add_field(name=t(locale, "settings.field.costs"), value=rules[:1024], inline=False)
    return embed


class Settings(commands.Cog):
    """The /settings group."""

    group = app_commands.Group(
        name=locale_str("settings"),
        description=locale_str("Server settings for image making (admins)"),
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

    async def _reply(self, interaction: Interaction, config: GuildConfig) -> None:
        """The settings as they now are, privately, in the member's language."""
        embed = settings_embed(self.bot, config, user_locale(interaction))
        await interaction.followup.send(embed=embed, ephemeral=True)

    @group.command(
        name=locale_str("show"), description=locale_str("Show this server's settings and cost rules")
    )
    async def show(self, interaction: Interaction) -> None:
        """Ephemeral summary."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        require_manager(interaction)
        config = await store_of(self.bot).get(guild_id_of(interaction))
        await self._reply(interaction, config)

    @group.command(name=locale_str("set"), description=locale_str("Change defaults and limits on pace"))
    @app_commands.describe(
        model=locale_str("Default model for this server"),
        cooldown=locale_str("Seconds a member waits between images"),
        jobs_at_once=locale_str("Jobs one member may run at the same time"),
        age_restricted_only=locale_str("Only allow images in age-restricted channels"),
        cost_multiplier=locale_str("Multiply every job's cost (e.g. 2 to halve what limits allow)"),
        safety=locale_str("How strictly images are filtered (relaxed: in age-restricted channels only)"),
        search=locale_str("Ground images in Google Search by default (on models that offer it)"),
        previews=locale_str("Show thinking models' interim images while they work"),
    )
    @app_commands.autocomplete(model=model_choices)
    @app_commands.choices(
        safety=[
            Choice(name=locale_str(level, key=f"choice.safety.{level}"), value=level)
            for level in SAFETY_LEVELS
        ],
        search=ON_OFF,
        previews=ON_OFF,
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
        await self._reply(interaction, config)

    @group.command(
        name=locale_str("channel"), description=locale_str("Allow or disallow image making in a channel")
    )
    @app_commands.describe(
        channel=locale_str("The channel"),
        allowed=locale_str("Allowed (once any channel is allowed, only those are)"),
    )
    async def channel(self, interaction: Interaction, channel: discord.TextChannel, allowed: bool) -> None:
        """Edit the allowed-channel list."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        current = await store_of(self.bot).get(guild_id_of(interaction))
        channels = [c for c in current.allowed_channels if c != channel.id] + (
            [channel.id] if allowed else []
        )
        config = await self._update(interaction, allowed_channels=channels)
        await self._reply(interaction, config)

    @group.command(
        name=locale_str("blocklist"), description=locale_str("Add or remove a blocked prompt phrase")
    )
    @app_commands.describe(
        action=locale_str("Add or remove"),
        phrase=locale_str(
            "Word or phrase (matched ignoring case, accents, look-alike letters and invisible characters)"
        ),
    )
    @app_commands.choices(
        action=[
            Choice(name=locale_str("add", key="choice.blocklist.add"), value="add"),
            Choice(name=locale_str("remove", key="choice.blocklist.remove"), value="remove"),
        ]
    )
    async def blocklist(
        self, interaction: Interaction, action: str, phrase: app_commands.Range[str, 1, 100]
    ) -> None:
        """Edit the blocklist; a phrase matching the same prompts as a listed one replaces or removes it."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        require_manager(interaction)
        if action == "add" and not normalize(phrase):
            raise InputError(Text("settings.blocklist.empty"))
        current = await store_of(self.bot).get(guild_id_of(interaction))
        phrases = [p for p in current.blocklist if not same_phrase(p, phrase)]
        if action == "add":
            if len(phrases) >= MAX_BLOCKLIST:
                raise InputError(Text("settings.blocklist.full", limit=MAX_BLOCKLIST))
            phrases.append(phrase.strip())
        config = await self._update(interaction, blocklist=phrases)
        await self._reply(interaction, config)


async def setup(bot: Client) -> None:
    """Extension entry point."""
    await bot.add_cog(Settings(bot))
