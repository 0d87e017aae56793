"""/help: a private answer with a menu of topics (commands, models and costs, the rules here and the
member's credits, replying to refine, privacy, version), each drawn from the live configuration."""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.app_commands import locale_str
from discord.ext import commands

from bot.billing.allowance import dm_allowance, member_allowance
from bot.billing.costs import scaled, to_cents
from bot.billing.server_rules import check_place
from bot.errors import NanoBotError, Refused
from bot.i18n import Text
from bot.storage.guilds import GuildConfig
from bot.ui.delivery import age_restricted, rules_guild, send_error
from bot.ui.embeds import error_embed
from bot.ui.help import TOPICS, TopicSelect, command_entries, help_view
from bot.ui.help_topics import (
    RulesFacts,
    commands_embed,
    models_embed,
    overview_embed,
    price_list,
    privacy_embed,
    refine_embed,
    rules_embed,
    version_embed,
)
from bot.ui.locale import user_locale
from bot.ui.types import Client, Interaction
from bot.wiring import services_of

log = logging.getLogger(__name__)

#: The topics drawn from the database (the server's settings, the member's counters).
STORED = frozenset({"models", "rules", "refine"})


class Help(commands.Cog):
    """The /help command and its topic menu."""

    def __init__(self, bot: Client) -> None:
        self.bot = bot
        self.services = services_of(bot)

    async def cog_load(self) -> None:
        """Menus from any earlier run keep working."""
        self.bot.add_dynamic_items(TopicSelect)

    async def cog_unload(self) -> None:
        """Stop dispatching menu choices here."""
        self.bot.remove_dynamic_items(TopicSelect)

    @app_commands.command(
        name=locale_str("help"),
        description=locale_str("What this bot can do, what it costs and what you have left"),
    )
    async def help_(self, interaction: Interaction) -> None:
        """The overview and the menu, privately; the overview needs no database, so it is the answer."""
        locale = user_locale(interaction)
        embed = await self.page(interaction, TOPICS[0], None)
        view = help_view(interaction.user.id, TOPICS[0], locale)
        await interaction.response.send_message(embed=embed, view=view, ephemeral=True)

    async def on_help_topic(self, interaction: Interaction, member_id: int, topic: str) -> None:
        """Show the chosen topic in the same message, keeping the menu (only for the member who asked)."""
        locale = user_locale(interaction)
        if interaction.user.id != member_id:
            mine = (await self._slash_help(interaction)) or "/help"
            refused = Refused(Text("help.not_yours.title"), Text("help.not_yours.body", command=mine))
            await interaction.response.send_message(embed=error_embed(refused, locale), ephemeral=True)
            return
        await interaction.response.defer()  # the page may read the database
        try:
            config = (
                await self.services.guild_settings.get(rules_guild(interaction)) if topic in STORED else None
            )
            embed = await self.page(interaction, topic, config)
            await interaction.edit_original_response(embed=embed, view=help_view(member_id, topic, locale))
        except Exception as error:
            if not isinstance(error, NanoBotError):
                log.exception("help topic %s failed", topic)
            await send_error(interaction, error, lifetime=self.services.settings.interaction_token_lifetime)

    async def page(self, interaction: Interaction, topic: str, config: GuildConfig | None) -> discord.Embed:
        """One topic's embed, in the member's language."""
        locale = user_locale(interaction)
        settings = self.services.settings
        multiplier = config.cost_multiplier if config is not None and rules_guild(interaction) else 1.0
        if topic == "models":
            default = await self._default_model(interaction, config)
            prices = price_list(self.services.router, settings.costs, multiplier, default)
            return models_embed(locale, prices)
        if topic == "rules":
            return rules_embed(locale, await self._rules(interaction, config or GuildConfig()))
        if topic == "refine":
            turn = scaled(to_cents(settings.costs.refine_turn), multiplier)
            return refine_embed(locale, settings, turn)
        if topic == "version":
            return version_embed(locale, self.services.router)
        entries = await command_entries(interaction)
        if topic == "commands":
            return commands_embed(locale, entries)
        if topic == "privacy":
            return privacy_embed(locale, settings, entries)
        user = interaction.client.user
        return overview_embed(locale, user.display_name if user else "nanobot", entries)

    async def _slash_help(self, interaction: Interaction) -> str | None:
        """/help as this member's client names it."""
        found = [e.shown for e in await command_entries(interaction) if e.english == "help"]
        return found[0] if found else None

    async def _default_model(self, interaction: Interaction, config: GuildConfig | None) -> str | None:
        """The model this member's job with none chosen runs on: their /prefs model when served, else
        the server's default when served, else the first."""
        served = [model for _, model in self.services.router.models()]
        prefs = self.services.prefs.cached(interaction.user.id) or await self.services.prefs.get(
            interaction.user.id
        )
        if prefs.model in served:
            return prefs.model
        if config is not None and config.default_model in served:
            return config.default_model
        return served[0] if served else None

    async def _rules(self, interaction: Interaction, config: GuildConfig) -> RulesFacts:
        """The rules where the member asked and their allowance, counted as /usage and admission do."""
        settings = self.services.settings
        store = self.services.quotas
        user = interaction.user
        blocked = user.id in settings.blocked_users
        guild_id = rules_guild(interaction)
        if guild_id is None:
            if not settings.allow_dms:
                return RulesFacts(in_server=False, allowed=False)
            allowance = await dm_allowance(store, user.id, to_cents(settings.dm_credits), settings.dm_window)
            return RulesFacts(
                in_server=False,
                operator_blocked=blocked,
                allowance=allowance,
                cooldown=settings.dm_cooldown,
                running=settings.max_concurrent_jobs,
                queued=settings.max_queued_per_user,
            )
        role_ids = [role.id for role in getattr(user, "roles", [])]
        allowance, pool = await member_allowance(store, guild_id, user.id, role_ids)
        admission = self.services.jobs.admission
        return RulesFacts(
            in_server=True,
            operator_blocked=blocked,
            allowance=allowance,
            pool=pool,
            cooldown=config.cooldown_seconds,
            running=admission.jobs_at_once(config),
            queued=settings.max_queued_per_user,
            channels=tuple(config.allowed_channels),
            age_restricted_only=config.age_restricted_only,
            here=_allowed_here(config, interaction),
            multiplier=config.cost_multiplier,
        )


def _allowed_here(config: GuildConfig, interaction: Interaction) -> bool:
    """Whether admission lets a job through in this channel (its own check, so they never disagree)."""
    try:
        check_place(config, interaction.channel_id or 0, age_restricted(interaction.channel))
    except Refused:
        return False
    return True


async def setup(bot: Client) -> None:
    """Extension entry point."""
    await bot.add_cog(Help(bot))
