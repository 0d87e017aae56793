"""/usage for everyone; /quota and /audit for server admins (Manage Server)."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.billing.costs import credits, to_cents
from bot.billing.rules import OPERATOR_GUILD, Rule, effective_user_rule, guild_rule, user_check, user_subject
from bot.billing.server_rules import discord_time
from bot.billing.store import QuotaStore
from bot.errors import InputError, Refused
from bot.ui.types import Client, Interaction
from bot.wiring import services_of

ADMIN = discord.Permissions(manage_guild=True)
SCOPE_CHOICES = [
    app_commands.Choice(name="the whole server (shared pool)", value="guild"),
    app_commands.Choice(name="every member (default)", value="default"),
    app_commands.Choice(name="a role", value="role"),
    app_commands.Choice(name="a member", value="user"),
]
WINDOW_CHOICES = [app_commands.Choice(name=w, value=w) for w in ("day", "week", "month")]


def require_manager(interaction: Interaction) -> None:
    """Check the permission again at run time (command permissions can be changed by admins)."""
    if not interaction.permissions.manage_guild:
        raise Refused("🔒 Admins only", "You need the Manage Server permission to do that.")


def guild_id_of(interaction: Interaction) -> int:
    """The server the command came from (these commands are server-only)."""
    if interaction.guild_id is None:
        raise InputError("This command only works in a server")
    return interaction.guild_id


def quotas_of(bot: Client) -> QuotaStore:
    """The quota store (exists once the bot is set up)."""
    return services_of(bot).quotas


def parse_limit(text: str) -> tuple[int | None, bool]:
    """(limit in cents or None for unlimited, blocked) from "25", "2.5", "unlimited" or "blocked"."""
    value = text.strip().lower()
    if value in ("unlimited", "none", "∞", "inf"):
        return None, False
    if value in ("blocked", "block", "ban", "0 blocked"):
        return 0, True
    try:
        amount = float(value)
    except ValueError:
        raise InputError(
            f"“{text}” is not a limit: give a number of credits, “unlimited” or “blocked”"
        ) from None
    if amount < 0 or amount > 1_000_000:
        raise InputError("A limit is between 0 and 1,000,000 credits")
    return to_cents(amount), False


def target_of(scope: str, role: discord.Role | None, user: discord.Member | None) -> int:
    """The rule's target id for a scope, checking the matching option was given."""
    if scope == "role":
        if role is None:
            raise InputError("Pick the role with the `role` option")
        return role.id
    if scope == "user":
        if user is None:
            raise InputError("Pick the member with the `user` option")
        return user.id
    return 0


def describe_rule(rule: Rule) -> str:
    """A rule as one line."""
    who = {"guild": "Server pool", "default": "Everyone (default)"}.get(rule.scope)
    if who is None:
        who = f"<@&{rule.target_id}>" if rule.scope == "role" else f"<@{rule.target_id}>"
    if rule.blocked:
        return f"{who}: blocked"
    return f"{who}: {credits(rule.limit_cents)} credits per {rule.window}"


class Admin(commands.Cog):
    """Usage, quotas and the audit log."""

    quota = app_commands.Group(
        name="quota", description="Server credit limits (admins)", default_permissions=ADMIN, guild_only=True
    )

    def __init__(self, bot: Client) -> None:
        self.bot = bot
        self.services = services_of(bot)

    @app_commands.command(name="usage", description="Credits used, your limit, and when it resets")
    @app_commands.describe(user="Someone else's usage (admins only)")
    @app_commands.guild_only()
    async def usage(self, interaction: Interaction, user: discord.Member | None = None) -> None:
        """Ephemeral: used, reserved, limit and reset time, for you (or, for admins, anyone).

        In the bot's DMs it shows the DM allowance (DM_CREDITS per DM_WINDOW)."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        if interaction.guild_id is None:
            await interaction.followup.send(embed=await self._dm_usage(interaction.user), ephemeral=True)
            return
        guild_id = guild_id_of(interaction)
        target = user or interaction.user
        if target.id != interaction.user.id:
            require_manager(interaction)
        store = quotas_of(self.bot)
        rules = await store.rules(guild_id)
        role_ids = [r.id for r in getattr(target, "roles", [])]
        rule = effective_user_rule(rules, target.id, role_ids)
        check = user_check(guild_id, target.id, rule)
        mine = await store.usage(guild_id, user_subject(target.id), check.window)
        embed = discord.Embed(title=f"Usage of {target.display_name}", colour=discord.Colour.blurple())
        limit = "blocked" if rule and rule.blocked else f"{credits(check.limit_cents)} per {check.window}"
        embed.add_field(name="Used", value=f"{credits(mine.used_cents)} credits")
        embed.add_field(name="Reserved", value=f"{credits(mine.reserved_cents)} credits")
        embed.add_field(name="Limit", value=limit)
        if mine.resets_at is not None:
            embed.add_field(name="Resets", value=discord_time(mine.resets_at))
        pool = guild_rule(rules)
        if pool is not None:
            shared = await store.usage(guild_id, "guild", pool.window)
            embed.add_field(
                name="Server pool",
                value=f"{credits(shared.used_cents)} of {credits(pool.limit_cents)} per {pool.window}",
                inline=False,
            )
        await interaction.followup.send(embed=embed, ephemeral=True)

    async def _dm_usage(self, user: discord.User | discord.Member) -> discord.Embed:
        """The user's DM allowance: used, reserved, the limit and when it resets."""
        settings = self.services.settings
        if not settings.allow_dms:
            raise Refused("🚧 Not in DMs", "This bot makes images in servers only; use /usage in a server.")
        mine = await quotas_of(self.bot).usage(OPERATOR_GUILD, user_subject(user.id), settings.dm_window)
        embed = discord.Embed(title="Your usage in DMs", colour=discord.Colour.blurple())
        embed.add_field(name="Used", value=f"{credits(mine.used_cents)} credits")
        embed.add_field(name="Reserved", value=f"{credits(mine.reserved_cents)} credits")
        embed.add_field(name="Limit", value=f"{settings.dm_credits:g} per {settings.dm_window}")
        if mine.resets_at is not None:
            embed.add_field(name="Resets", value=discord_time(mine.resets_at))
        return embed

    @quota.command(name="set", description="Set a credit limit for the server, everyone, a role or a member")
    @app_commands.describe(
        scope="Who the limit applies to",
        limit="Credits per window, “unlimited” or “blocked”",
        window="The period the limit covers (UTC calendar)",
        role="The role (scope: a role)",
        user="The member (scope: a member)",
    )
    @app_commands.choices(scope=SCOPE_CHOICES, window=WINDOW_CHOICES)
    async def quota_set(
        self,
        interaction: Interaction,
        scope: str,
        limit: str,
        window: str = "day",
        role: discord.Role | None = None,
        user: discord.Member | None = None,
    ) -> None:
        """Upsert one rule."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        require_manager(interaction)
        cents, blocked = parse_limit(limit)
        rule = Rule(guild_id_of(interaction), scope, target_of(scope, role, user), cents, blocked, window)
        await quotas_of(self.bot).set_rule(rule)
        await interaction.followup.send(f"✅ {describe_rule(rule)}", ephemeral=True)

    @quota.command(name="show", description="Every credit limit on this server")
    async def quota_show(self, interaction: Interaction) -> None:
        """List the rules and the server pool's usage."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        require_manager(interaction)
        rules = await quotas_of(self.bot).rules(guild_id_of(interaction))
        lines = [describe_rule(r) for r in rules] or ["No limits: everyone may make images freely."]
        embed = discord.Embed(title="Credit limits", description="\n".join(lines)[:4000])
        await interaction.followup.send(embed=embed, ephemeral=True)

    @quota.command(name="reset", description="Forget the credits used in the current window")
    @app_commands.describe(user="Only this member (default: everyone on the server)")
    async def quota_reset(self, interaction: Interaction, user: discord.Member | None = None) -> None:
        """Zero the current usage of a member, or of the whole server."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        require_manager(interaction)
        subject = user_subject(user.id) if user else None
        await quotas_of(self.bot).reset(guild_id_of(interaction), subject)
        who = user.mention if user else "everyone on this server"
        await interaction.followup.send(f"✅ Usage reset for {who}.", ephemeral=True)

    @quota.command(name="clear", description="Remove a credit limit")
    @app_commands.describe(
        scope="Which limit", role="The role (scope: a role)", user="The member (scope: a member)"
    )
    @app_commands.choices(scope=SCOPE_CHOICES)
    async def quota_clear(
        self,
        interaction: Interaction,
        scope: str,
        role: discord.Role | None = None,
        user: discord.Member | None = None,
    ) -> None:
        """Delete one rule."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        require_manager(interaction)
        removed = await quotas_of(self.bot).clear_rule(
            guild_id_of(interaction), scope, target_of(scope, role, user)
        )
        await interaction.followup.send(
            "✅ Limit removed." if removed else "There was no such limit.", ephemeral=True
        )

    @app_commands.command(name="audit", description="Recent jobs with their cost and outcome (admins)")
    @app_commands.describe(user="Only this member's jobs", text="Only prompts containing this text")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    async def audit(
        self,
        interaction: Interaction,
        user: discord.Member | None = None,
        text: str | None = None,
    ) -> None:
        """Ephemeral list of the newest jobs, filterable by member and prompt text."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        require_manager(interaction)
        rows = await quotas_of(self.bot).audit(
            guild_id_of(interaction), user_id=user.id if user else None, text=text, limit=20
        )
        lines = [
            f"{discord_time(r.created_at)} <@{r.user_id}> {r.kind} · {credits(r.cost_cents)} cr · "
            f"{r.outcome or r.status} · “{r.prompt[:60]}”"
            for r in rows
        ]
        embed = discord.Embed(title="Recent jobs", description="\n".join(lines)[:4000] or "No jobs match.")
        await interaction.followup.send(embed=embed, ephemeral=True)


async def setup(bot: Client) -> None:
    """Extension entry point."""
    await bot.add_cog(Admin(bot))
