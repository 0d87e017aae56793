"""Admitting a job: the server's rules, then an atomic reservation of its cost (refused jobs cost nothing)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from bot.billing.costs import credits, scaled, to_cents
from bot.billing.rules import (
    CONCURRENT,
    JOB_UNITS,
    Check,
    Cooldown,
    Refusal,
    dm_checks,
    effective_user_rule,
    job_checks,
)
from bot.billing.server_rules import check_blocklist, check_place, check_prompt, discord_time
from bot.billing.store import QuotaStore
from bot.config import Settings
from bot.errors import Refused
from bot.i18n import Credits, Text
from bot.storage.guilds import GuildConfig, GuildSettingsStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Who:
    """Where a job comes from: server, channel (and whether it is age-restricted), member and roles."""

    guild_id: int | None
    channel_id: int
    user_id: int
    role_ids: tuple[int, ...] = ()
    channel_nsfw: bool = False


@dataclass(frozen=True, slots=True)
class Charge:
    """A reservation held for a running job (id None when quotas are off)."""

    reservation_id: int | None
    cost_cents: int
    #: The server's cost multiplier the reservation was scaled by (a reported cost is scaled alike).
    multiplier: float = 1.0
    #: What the provider's reported usage costs, scaled (None: unknown, the reservation is spent).
    reported_cents: int | None = None

    def with_reported(self, base_cents: int | None) -> Charge:
        """The charge once the provider reported what the job used (`base_cents`: before the multiplier)."""
        if base_cents is None:
            return self
        return replace(self, reported_cents=scaled(base_cents, self.multiplier))

    @property
    def spent_cents(self) -> int:
        """What the job is charged: the reported cost, never more than the reservation."""
        return self.cost_cents if self.reported_cents is None else min(self.cost_cents, self.reported_cents)


class Admission:
    """Applies /settings rules and reserves credits; commit and refund settle the reservation."""

    def __init__(
        self, settings: Settings, quotas: QuotaStore, guilds: GuildSettingsStore, *, owner: str | None = None
    ) -> None:
        self.settings = settings
        self.quotas = quotas
        self.guilds = guilds
        self.owner = owner

    async def config(self, guild_id: int | None) -> GuildConfig:
        """The server's settings (defaults outside servers)."""
        return await self.guilds.get(guild_id)

    async def admit(
        self,
        who: Who,
        config: GuildConfig,
        *,
        cost_cents: int,
        kind: str,
        prompt: str,
        provider: str | None,
        model: str | None,
    ) -> Charge:
        """Reserve the cost on every counter the job is charged against; raises Refused (nothing
        charged) when a limit, a block or the cooldown says no. The cooldown is checked and started
        in the reservation. The rules that need no database are check_rules(), called first."""
        now = datetime.now(UTC)
        multiplier = config.cost_multiplier if who.guild_id else 1.0
        scaled_cents = scaled(cost_cents, multiplier) if who.guild_id else cost_cents
        checks = await self._checks(who, config, base_cents=cost_cents)
        pace = config.cooldown_seconds if who.guild_id else self.settings.dm_cooldown
        outcome = await self.quotas.reserve(
            guild_id=who.guild_id or 0,
            user_id=who.user_id,
            cost_cents=scaled_cents,
            checks=checks,
            kind=kind,
            prompt=prompt[:2000],
            provider=provider,
            model=model,
            now=now,
            channel_id=who.channel_id or None,
            owner=self.owner,
            cooldown=Cooldown(who.guild_id or 0, who.user_id, pace),
        )
        if isinstance(outcome, Refusal):
            raise _refused(outcome, scaled_cents)
        return Charge(outcome.id, scaled_cents, multiplier)

    def check_rules(self, who: Who, config: GuildConfig, prompt: str) -> None:
        """The rules that need no database: who, where, and what the prompt says."""
        if who.user_id in self.settings.blocked_users:
            raise Refused(Text("rules.blocked.title"), Text("rules.blocked.operator"))
        if who.guild_id is None and not self.settings.allow_dms:
            raise Refused(Text("rules.dm.title"), Text("rules.dm.body"))
        if who.guild_id:
            check_place(config, who.channel_id, who.channel_nsfw)
            check_prompt(config, prompt)
        check_blocklist(self.settings.blocklist, prompt, owner="bot")

    async def check_not_blocked(self, who: Who) -> None:
        """Refuse a member a server's admins have blocked (/quota set ... blocked) in that server."""
        if who.guild_id is None:
            return
        rule = effective_user_rule(await self.quotas.rules(who.guild_id), who.user_id, who.role_ids)
        if rule is not None and rule.blocked:
            raise _blocked()

    async def _checks(self, who: Who, config: GuildConfig, *, base_cents: int) -> list[Check]:
        """The counters this job is charged against (the operator's budget: base_cents, unscaled)."""
        budget = self.settings.operator_daily_budget
        budget_cents = None if budget is None else to_cents(budget)
        if who.guild_id is None:
            return dm_checks(
                who.user_id,
                limit_cents=to_cents(self.settings.dm_credits),
                window=self.settings.dm_window,
                budget_cents=budget_cents,
                max_concurrent=self.admitted_at_once(None),
                base_cents=base_cents,
            )
        rules = await self.quotas.rules(who.guild_id)
        rule = effective_user_rule(rules, who.user_id, who.role_ids)
        if rule is not None and rule.blocked:
            raise _blocked()
        return job_checks(
            who.guild_id,
            who.user_id,
            rule,
            rules,
            budget_cents=budget_cents,
            max_concurrent=self.admitted_at_once(config),
            base_cents=base_cents,
        )

    def jobs_at_once(self, config: GuildConfig | None) -> int:
        """How many of a member's jobs may run at once (the server's jobs_at_once, else the default)."""
        return (config.max_concurrent if config else None) or self.settings.max_concurrent_jobs

    def admitted_at_once(self, config: GuildConfig | None) -> int:
        """How many of a member's jobs may be admitted at once: those that run, and a queue behind them."""
        return self.jobs_at_once(config) + self.settings.max_queued_per_user

    async def started(self, charge: Charge) -> None:
        """The job got its slot and is running (what a restart tells its user)."""
        if charge.reservation_id is not None:
            await self.quotas.set_stage(charge.reservation_id, "running")

    async def commit(self, charge: Charge, outcome: str = "ok", turn_id: int | None = None) -> None:
        """The job delivered `turn_id` (or was cancelled once the provider had it): the credits are
        spent, the reported cost when it is known (the rest of the reservation is released)."""
        if charge.reservation_id is None:
            return
        if charge.reported_cents is not None and charge.reported_cents > charge.cost_cents:
            log.info(
                "reservation %s: reported cost %s credits is above the %s reserved; charged the reservation",
                charge.reservation_id,
                credits(charge.reported_cents),
                credits(charge.cost_cents),
            )
        actual = None if charge.reported_cents is None else charge.spent_cents
        await self.quotas.commit(charge.reservation_id, outcome=outcome, actual_cents=actual, turn_id=turn_id)

    async def refund(self, charge: Charge, reason: str) -> None:
        """The job failed or was cancelled: nothing is spent."""
        if charge.reservation_id is not None:
            await self.quotas.refund(charge.reservation_id, outcome=f"refunded: {reason}"[:200])


def _blocked() -> Refused:
    """A member a server's admins have blocked."""
    return Refused(Text("rules.blocked.title"), Text("rules.blocked.server"))


def _refused(refusal: Refusal, cost: int) -> Refused:
    """A refusal that says which limit, how much is left and when it resets."""
    if refusal.ready_at is not None:
        wait = max(1, int((refusal.ready_at - datetime.now(UTC)).total_seconds() + 0.999))
        when = discord_time(refusal.ready_at)
        return Refused(Text("rules.cooldown.title"), Text("rules.cooldown.body", seconds=wait, when=when))
    if refusal.label == CONCURRENT:
        admitted = refusal.limit_cents // JOB_UNITS
        return Refused(Text("rules.queue.title"), Text("rules.queue.admitted", count=admitted))
    left = max(0, refusal.limit_cents - refusal.used_cents - refusal.reserved_cents)
    amounts = {"cost": Credits(cost), "count": Credits(cost), "counter": refusal.label, "left": Credits(left)}
    limit = Credits(refusal.limit_cents)
    if refusal.resets_at is None:
        return Refused(Text("rules.quota.title"), Text("rules.quota.body", limit=limit, **amounts))
    when = discord_time(refusal.resets_at)
    return Refused(
        Text("rules.quota.title"), Text("rules.quota.body_resets", limit=limit, when=when, **amounts)
    )
