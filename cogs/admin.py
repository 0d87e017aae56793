"""/usage for everyone (`server:True` for admins); /quota and /audit for server admins (Manage Server)."""

from __future__ import annotations

from datetime import date, timedelta

import discord
from discord import app_commands
from discord.app_commands import Choice, locale_str
from discord.ext import commands

from bot.billing.allowance import dm_allowance, member_allowance, pool_allowance
from bot.billing.costs import to_cents
from bot.billing.reports import HISTORY_DAYS, DaySpend, daily_spend, day_start, export_jobs, top_members
from bot.billing.rules import (
    OPERATOR_GUILD,
    WINDOWS,
    Rule,
    guild_rule,
    user_subject,
    window_start,
)
from bot.billing.store import QuotaStore
from bot.errors import InputError, Refused
from bot.i18n import Credits, Text
from bot.storage.tables import utcnow
from bot.ui.locale import user_locale
from bot.ui.types import Client, Interaction
from bot.ui.usage import (
    AUDIT_LINES,
    MemberUsage,
    ServerUsage,
    audit_embed,
    export_reply,
    member_reply,
    server_reply,
)
from bot.wiring import services_of

ADMIN = discord.Permissions(manage_guild=True)
SCOPE_CHOICES = [
    Choice(name=locale_str("the whole server (shared pool)", key="quota.choice.scope.guild"), value="guild"),
    Choice(name=locale_str("every member (default)", key="quota.choice.scope.default"), value="default"),
    Choice(name=locale_str("a role", key="quota.choice.scope.role"), value="role"),
    Choice(name=locale_str("a member", key="quota.choice.scope.user"), value="user"),
]
WINDOW_CHOICES = [Choice(name=locale_str(w, key=f"quota.window.{w}"), value=w) for w in WINDOWS]
#: Room left in an upload for the multipart wrapping around the CSV.
UPLOAD_MARGIN = 64 * 1024


def require_manager(interaction: Interaction) -> None:
    """Check the permission again at run time (command permissions can be changed by admins)."""
    if not interaction.permissions.manage_guild:
        raise Refused(Text("quota.admins_only.title"), Text("quota.admins_only.body"))


def guild_id_of(interaction: Interaction) -> int:
    """The server the command came from (these commands are server-only)."""
    if interaction.guild_id is None:
        raise InputError(Text("quota.server_only"))
    return interaction.guild_id


def quotas_of(bot: Client) -> QuotaStore:
    """The quota store (exists once the bot is set up)."""
    return services_of(bot).quotas


def parse_limit(text: str) -> tuple[int | None, bool]:
    """(limit in cents or None for unlimited, blocked) from "25", "2.5" or "2,5", "unlimited", "blocked"."""
    value = text.strip().lower()
    if value in ("unlimited", "none", "∞", "inf"):
        return None, False
    if value in ("blocked", "block", "ban", "0 blocked"):
        return 0, True
    if value.count(",") == 1 and "." not in value:  # a decimal comma ("2,5"), as many languages write it
        value = value.replace(",", ".")
    try:
        amount = float(value)
    except ValueError:
        raise InputError(Text("quota.bad_limit", text=text)) from None
    if amount < 0 or amount > 1_000_000:
        raise InputError(Text("quota.limit_range"))
    return to_cents(amount), False


def target_of(scope: str, role: discord.Role | None, user: discord.Member | None) -> int:
    """The rule's target id for a scope, checking the matching option was given."""
    if scope == "role":
        if role is None:
            raise InputError(Text("quota.pick_role"))
        return role.id
    if scope == "user":
        if user is None:
            raise InputError(Text("quota.pick_user"))
        return user.id
    return 0


def describe_rule(rule: Rule) -> Text:
    """A rule as one line."""
    if rule.scope in ("guild", "default"):
        who: Text | str = Text(f"quota.who.{rule.scope}")
    else:
        who = f"<@&{rule.target_id}>" if rule.scope == "role" else f"<@{rule.target_id}>"
    if rule.blocked:
        return Text("quota.rule.blocked", who=who)
    window = Text(f"quota.window.{rule.window}")
    amount = Credits(rule.limit_cents)
    return Text("quota.rule.limit", who=who, amount=amount, count=amount, window=window)


class Admin(commands.Cog):
    """Usage, quotas and the audit log."""

    quota = app_commands.Group(
        name=locale_str("quota"),
        description=locale_str("Server credit limits (admins)"),
        default_permissions=ADMIN,
        guild_only=True,
    )

    def __init__(self, bot: Client) -> None:
        self.bot = bot
        self.services = services_of(bot)

    async def _days(self, guild_id: int, window: str, user_id: int | None) -> tuple[list[DaySpend], date]:
        """Credits per day for the last HISTORY_DAYS days (and back to the window's start, a month's
        1st may be older), and the window's first day."""
        now = utcnow()
        today, start = now.date(), window_start(window, now).date()
        first = min(today - timedelta(days=HISTORY_DAYS - 1), start)
        return await daily_spend(self.services.db, guild_id, first, today, user_id=user_id), start

    @app_commands.command(
        name=locale_str("usage"), description=locale_str("Credits used, your limit, and when it resets")
    )
    @app_commands.describe(
        user=locale_str("Someone else's usage (admins only)"),
        server=locale_str("The whole server's spend and top members (admins only)"),
    )
    @app_commands.guild_only()
    async def usage(
        self, interaction: Interaction, user: discord.Member | None = None, server: bool = False
    ) -> None:
        """Ephemeral: used, reserved, limit and reset time with a chart of the days, for you (or, for
        admins, anyone, or the whole server).

        In the bot's DMs it shows the DM allowance (DM_CREDITS per DM_WINDOW)."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        locale = user_locale(interaction)
        if server:
            if user is not None:
                raise InputError(Text("usage.server_or_user"))
            embed, chart = await server_reply(await self._server_usage(interaction), locale)
        elif interaction.guild_id is None:
            if user is not None and user.id != interaction.user.id:
                raise InputError(Text("usage.dm_only_yours"))
            embed, chart = await member_reply(await self._dm_usage(interaction.user), locale)
        else:
            embed, chart = await member_reply(await self._member_usage(interaction, user), locale)
        await interaction.followup.send(embed=embed, file=chart, ephemeral=True)

    async def _member_usage(self, interaction: Interaction, user: discord.Member | None) -> MemberUsage:
        """A member's allowance on this server, the server pool, and their days."""
        guild_id = guild_id_of(interaction)
        target = user or interaction.user
        if target.id != interaction.user.id:
            require_manager(interaction)
        role_ids = [r.id for r in getattr(target, "roles", [])]
        allowance, shared = await member_allowance(quotas_of(self.bot), guild_id, target.id, role_ids)
        window = allowance.window
        days, start = await self._days(guild_id, window, target.id)
        return MemberUsage(
            title=Text("usage.title", name=target.display_name),
            mine=allowance,
            days=days,
            window_start=start,
            pool=shared,
        )

    async def _dm_usage(self, user: discord.User | discord.Member) -> MemberUsage:
        """The user's DM allowance: used, reserved, the limit, when it resets, and their days in DMs."""
        settings = self.services.settings
        if not settings.allow_dms:
            raise Refused(Text("usage.no_dms.title"), Text("usage.no_dms.body"))
        window = settings.dm_window
        allowance = await dm_allowance(quotas_of(self.bot), user.id, to_cents(settings.dm_credits), window)
        days, start = await self._days(OPERATOR_GUILD, window, user.id)
        return MemberUsage(
            title=Text("usage.dm_title"),
            mine=allowance,
            days=days,
            window_start=start,
        )

    async def _server_usage(self, interaction: Interaction) -> ServerUsage:
        """The server's pool (its current window: the pool rule's, else a day), days and top members."""
        guild_id = guild_id_of(interaction)
        require_manager(interaction)
        store = quotas_of(self.bot)
        allowance = await pool_allowance(store, guild_id, guild_rule(await store.rules(guild_id)))
        days, start = await self._days(guild_id, allowance.window, None)
        db = self.services.db
        return ServerUsage(
            name=interaction.guild.name if interaction.guild is not None else str(guild_id),
            pool=allowance,
            days=days,
            window_start=start,
            top_window=await top_members(db, guild_id, day_start(start)),
            top_history=await top_members(db, guild_id, day_start(days[-HISTORY_DAYS].day)),
        )

    @quota.command(
        name=locale_str("set"),
        description=locale_str("Set a credit limit for the server, everyone, a role or a member"),
    )
    @app_commands.describe(
        scope=locale_str("Who the limit applies to"),
        limit=locale_str("Credits per window, “unlimited” or “blocked”"),
        window=locale_str("The period the limit covers (UTC calendar)"),
        role=locale_str("The role (scope: a role)"),
        user=locale_str("The member (scope: a member)"),
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
        done = Text("quota.set.done", rule=describe_rule(rule))
        await interaction.followup.send(done.render(user_locale(interaction)), ephemeral=True)

    @quota.command(name=locale_str("show"), description=locale_str("Every credit limit on this server"))
    async def quota_show(self, interaction: Interaction) -> None:
        """List the rules and the server pool's usage."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        require_manager(interaction)
        locale = user_locale(interaction)
        rules = await quotas_of(self.bot).rules(guild_id_of(interaction))
        lines = [describe_rule(r).render(locale) for r in rules] or [Text("quota.show.none").render(locale)]
        title = Text("quota.show.title").render(locale)
        embed = discord.Embed(title=title, description="\n".join(lines)[:4000])
        await interaction.followup.send(embed=embed, ephemeral=True)

    @quota.command(
        name=locale_str("reset"), description=locale_str("Forget the credits used in the current window")
    )
    @app_commands.describe(user=locale_str("Only this member (default: everyone on the server)"))
    async def quota_reset(self, interaction: Interaction, user: discord.Member | None = None) -> None:
        """Zero the current usage of a member, or of the whole server."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        require_manager(interaction)
        subject = user_subject(user.id) if user else None
        await quotas_of(self.bot).reset(guild_id_of(interaction), subject)
        who: Text | str = user.mention if user else Text("quota.reset.everyone")
        done = Text("quota.reset.done", who=who).render(user_locale(interaction))
        await interaction.followup.send(done, ephemeral=True)

    @quota.command(name=locale_str("clear"), description=locale_str("Remove a credit limit"))
    @app_commands.describe(
        scope=locale_str("Which limit"),
        role=locale_str("The role (scope: a role)"),
        user=locale_str("The member (scope: a member)"),
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
        said = Text("quota.clear.done" if removed else "quota.clear.none").render(user_locale(interaction))
        await interaction.followup.send(said, ephemeral=True)

    @app_commands.command(
        name=locale_str("audit"), description=locale_str("Recent jobs with their cost and outcome (admins)")
    )
    @app_commands.describe(
        user=locale_str("Only this member's jobs"),
        text=locale_str("Only prompts containing this text"),
        export=locale_str("Attach every matching job as a CSV file (newest 5000)"),
    )
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    async def audit(
        self,
        interaction: Interaction,
        user: discord.Member | None = None,
        text: str | None = None,
        export: bool = False,
    ) -> None:
        """Ephemeral list of the newest jobs, filterable by member and prompt text; or all of them
        (up to EXPORT_CAP) as a CSV file."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        require_manager(interaction)
        guild_id = guild_id_of(interaction)
        user_id = user.id if user else None
        locale = user_locale(interaction)
        if not export:
            rows = await quotas_of(self.bot).audit(guild_id, user_id=user_id, text=text, limit=AUDIT_LINES)
            await interaction.followup.send(embed=audit_embed(rows, locale), ephemeral=True)
            return
        lines, capped = await export_jobs(self.services.db, guild_id, user_id=user_id, text=text)
        stem = f"audit-{guild_id}-{utcnow():%Y%m%d-%H%M}"
        room = max(UPLOAD_MARGIN, interaction.filesize_limit - UPLOAD_MARGIN)
        embed, csv_file = await export_reply(lines, capped, room, stem, locale)
        if csv_file is None:
            await interaction.followup.send(embed=embed, ephemeral=True)
        else:
            await interaction.followup.send(embed=embed, file=csv_file, ephemeral=True)


async def setup(bot: Client) -> None:
    """Extension entry point."""
    await bot.add_cog(Admin(bot))
