"""Admitting a job: the server's rules, then an atomic reservation of its cost (refused jobs cost nothing)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.config import Settings
from bot.costs import credits, to_cents
from bot.errors import Refused
from bot.policy import check_cooldown, check_place, check_prompt, discord_time
from bot.quota_store import QuotaStore
from bot.quotas import Check, Refusal, effective_user_rule, job_checks
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
        """Check the server's rules (config: its settings) and reserve the cost; raises Refused
        (nothing charged) when not allowed."""
        now = datetime.now(UTC)
        guild_id = who.guild_id or 0
        if who.guild_id:
            check_place(config, who.channel_id, who.channel_nsfw)
        check_prompt(config, prompt)
        if config.cooldown_seconds:  # the last job is only worth a query when there is a cooldown
            check_cooldown(config, await self.quotas.last_job_at(guild_id, who.user_id), now)
        cost = to_cents(cost_cents / 100 * config.cost_multiplier)
        checks = await self._checks(who, config)
        outcome = await self.quotas.reserve(
            guild_id=guild_id,
            user_id=who.user_id,
            cost_cents=cost,
            checks=checks,
            kind=kind,
            prompt=prompt[:2000],
            provider=provider,
            model=model,
            now=now,
            channel_id=who.channel_id or None,
            owner=self.owner,
        )
        if isinstance(outcome, Refusal):
            raise _refused(outcome, cost)
        return Charge(outcome.id, cost)

    async def _checks(self, who: Who, config: GuildConfig) -> list[Check]:
        """The counters this job is charged against."""
        guild_id = who.guild_id or 0
        rules = await self.quotas.rules(guild_id) if who.guild_id else []
        rule = effective_user_rule(rules, who.user_id, who.role_ids)
        if rule is not None and rule.blocked:
            raise Refused("⛔ Not allowed", "A server admin has blocked you from making images here.")
        budget = self.settings.operator_daily_budget
        return job_checks(
            guild_id,
            who.user_id,
            rule,
            rules,
            budget_cents=None if budget is None else to_cents(budget),
            max_concurrent=config.max_concurrent or self.settings.max_concurrent_jobs,
        )

    async def started(self, charge: Charge) -> None:
        """The job got its slot and is running (what a restart tells its user)."""
        if charge.reservation_id is not None:
            await self.quotas.set_stage(charge.reservation_id, "running")

    async def commit(self, charge: Charge) -> None:
        """The job delivered: the reserved credits are spent."""
        if charge.reservation_id is not None:
            await self.quotas.commit(charge.reservation_id)

    async def refund(self, charge: Charge, reason: str) -> None:
        """The job failed or was cancelled: nothing is spent."""
        if charge.reservation_id is not None:
            await self.quotas.refund(charge.reservation_id, outcome=f"refunded: {reason}"[:200])


def _refused(refusal: Refusal, cost: int) -> Refused:
    """A refusal that says which limit, how much is left and when it resets."""
    if refusal.label == "your concurrent jobs":
        running = refusal.limit_cents // 100
        return Refused(
            "⏳ Too many jobs", f"You already have {running} jobs running; wait for one to finish."
        )
    left = max(0, refusal.limit_cents - refusal.used_cents - refusal.reserved_cents)
    when = f" It resets {discord_time(refusal.resets_at)}." if refusal.resets_at else ""
    return Refused(
        "📉 Quota reached",
        f"This job costs {credits(cost)} credits but {refusal.label} has {credits(left)} of "
        f"{credits(refusal.limit_cents)} left.{when}",
    )
