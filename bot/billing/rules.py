"""Quotas: UTC windows, rules and their resolution, and the value types of the quota store.

Credits are integer hundredths ("cents", 1 credit = 100) so that SQL arithmetic is exact. The store
that reserves, commits and refunds them atomically is bot.billing.store.QuotaStore.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from bot.i18n import Text, Words

WINDOWS: Final = ("day", "week", "month")
SCOPES: Final = ("guild", "default", "role", "user")
#: The start of every non-windowed counter (concurrency, lifetime totals).
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
#: Guild id of the operator-wide budget (it spans every guild).
OPERATOR_GUILD: Final = 0
#: Units one running job holds on an "active:<user>" concurrency counter.
JOB_UNITS: Final = 100
#: The label of the member's jobs-at-once counter (admission words its refusal apart).
CONCURRENT: Final = Text("rules.label.concurrent")


def _check_window(window: str) -> None:
    """Raise ValueError for anything but day, week or month."""
    if window not in WINDOWS:
        raise ValueError(f"unknown quota window {window!r}; expected one of {', '.join(WINDOWS)}")


def _utc(now: datetime) -> datetime:
    """The instant in UTC (naive values are taken to be UTC already)."""
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def window_start(window: str, now: datetime) -> datetime:
    """The start of the UTC calendar window containing now: midnight, Monday midnight, or the 1st."""
    _check_window(window)
    midnight = _utc(now).replace(hour=0, minute=0, second=0, microsecond=0)
    if window == "day":
        return midnight
    if window == "week":
        return midnight - timedelta(days=midnight.weekday())
    return midnight.replace(day=1)


def window_end(window: str, now: datetime) -> datetime:
    """When the window containing now resets (the start of the next one)."""
    start = window_start(window, now)
    if window == "day":
        return start + timedelta(days=1)
    if window == "week":
        return start + timedelta(days=7)
    if start.month == 12:
        return start.replace(year=start.year + 1, month=1)
    return start.replace(month=start.month + 1)


def counter_start(window: str | None, now: datetime) -> datetime:
    """The window_start key of a counter: the window's start, or the epoch when not windowed."""
    return EPOCH if window is None else window_start(window, now)


def resets_at(window: str | None, now: datetime) -> datetime | None:
    """When a counter resets, or None when it never does."""
    return None if window is None else window_end(window, now)


@dataclass(frozen=True, slots=True)
class Rule:
    """One quota rule: a limit (None = unlimited) or a block, per window."""

    guild_id: int
    scope: str
    target_id: int
    limit_cents: int | None
    blocked: bool
    window: str

    def __post_init__(self) -> None:
        """Refuse rules the store could not enforce."""
        if self.scope not in SCOPES:
            raise ValueError(f"unknown quota scope {self.scope!r}; expected one of {', '.join(SCOPES)}")
        _check_window(self.window)
        if self.limit_cents is not None and self.limit_cents < 0:
            raise ValueError("a quota limit cannot be negative")
        if self.scope in ("guild", "default") and self.target_id != 0:
            raise ValueError(f"a {self.scope} rule has target_id 0")

    @property
    def effective_limit(self) -> int | None:
        """The limit to enforce: 0 when blocked, None when unlimited."""
        return 0 if self.blocked else self.limit_cents


def generosity(rule: Rule) -> tuple[int, int]:
    """Sort key, larger is more generous: unlimited > larger limit > smaller limit > blocked.

    Limits in different windows are compared as given (100/day beats 50/week): simple and predictable.
    """
    if rule.blocked:
        return (0, 0)
    if rule.limit_cents is None:
        return (2, 0)
    return (1, rule.limit_cents)


def effective_user_rule(rules: Sequence[Rule], user_id: int, role_ids: Collection[int]) -> Rule | None:
    """The rule for a member: their user rule, else their most generous role rule, else the default.

    A rule on @everyone (the role whose id is the server's) is the default rule: every member has
    that role, so counting it among their roles would let it override every stricter role rule.
    """
    for rule in rules:
        if rule.scope == "user" and rule.target_id == user_id:
            return rule
    roles = set(role_ids)
    matching = [r for r in rules if r.scope == "role" and r.target_id in roles and r.target_id != r.guild_id]
    if matching:
        return max(matching, key=generosity)
    everyone = [r for r in rules if r.scope == "role" and r.target_id == r.guild_id]
    return next((r for r in rules if r.scope == "default"), everyone[0] if everyone else None)


def guild_rule(rules: Sequence[Rule]) -> Rule | None:
    """The server-wide pool rule, if any."""
    return next((r for r in rules if r.scope == "guild"), None)


@dataclass(frozen=True, slots=True)
class Check:
    """One counter to charge, with its limit for this reservation.

    `units`, when set, is charged instead of the credit cost and is released (not kept) on commit:
    that is how concurrency counters work. With no units, commit moves the cost from reserved to used.
    `cents`, when set, is the credit amount this counter is charged instead of the job's cost (the
    operator's budget counts a job's unscaled cost whatever a server's multiplier makes it).
    """

    guild_id: int
    subject: str
    window: str | None
    limit_cents: int | None
    #: What the refusal calls this counter ("your daily limit"), a catalogue message.
    label: Words
    units: int | None = None
    cents: int | None = None

    def __post_init__(self) -> None:
        """Refuse checks that cannot be enforced."""
        if self.window is not None:
            _check_window(self.window)
        if self.limit_cents is not None and self.limit_cents < 0:
            raise ValueError("a quota limit cannot be negative")
        if self.units is not None and self.units < 0:
            raise ValueError("units cannot be negative")
        if self.cents is not None and self.cents < 0:
            raise ValueError("a cost cannot be negative")

    def amount(self, cost_cents: int) -> int:
        """What this check charges for a job costing cost_cents."""
        if self.units is not None:
            return self.units
        return cost_cents if self.cents is None else self.cents


@dataclass(frozen=True, slots=True)
class Reservation:
    """Credits held for one job until commit or refund."""

    id: int
    cost_cents: int


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a reservation was refused: the first check that did not fit (or the cooldown: ready_at)."""

    label: Words
    limit_cents: int
    used_cents: int
    reserved_cents: int
    resets_at: datetime | None
    ready_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Cooldown:
    """At most one admitted job per `seconds` for a member in a server (guild 0: DMs)."""

    guild_id: int
    user_id: int
    seconds: int


@dataclass(frozen=True, slots=True)
class Usage:
    """One counter as /usage shows it."""

    used_cents: int
    reserved_cents: int
    window_start: datetime
    resets_at: datetime | None


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One reservation as the audit log shows it."""

    id: int
    guild_id: int
    user_id: int
    cost_cents: int
    status: str
    kind: str
    prompt: str
    provider: str | None
    model: str | None
    outcome: str | None
    counters: list[Any]
    created_at: datetime
    finished_at: datetime | None


# --- the standard counters, so every caller spells subjects and labels the same way ---------------


def user_subject(user_id: int) -> str:
    """The per-user credit counter's subject."""
    return f"user:{user_id}"


def active_subject(user_id: int) -> str:
    """The per-user concurrency counter's subject."""
    return f"active:{user_id}"


def user_check(guild_id: int, user_id: int, rule: Rule | None, default_window: str = "day") -> Check:
    """The member's credit check; with no rule it is still counted (unlimited) for /usage."""
    window = default_window if rule is None else rule.window
    limit = None if rule is None else rule.effective_limit
    label = Text("rules.label.blocked") if rule and rule.blocked else Text(f"rules.label.user.{window}")
    return Check(guild_id, user_subject(user_id), window, limit, label)


def guild_check(guild_id: int, rule: Rule | None, default_window: str = "day") -> Check:
    """The server-wide pool's check; unlimited (but counted) when the guild has no pool rule."""
    window = default_window if rule is None else rule.window
    limit = None if rule is None else rule.effective_limit
    return Check(guild_id, "guild", window, limit, Text(f"rules.label.guild.{window}"))


def operator_check(limit_cents: int | None, window: str = "day", *, cents: int | None = None) -> Check:
    """The operator's budget across every guild (charged `cents`, the unscaled cost, when given)."""
    label = Text(f"rules.label.operator.{window}")
    return Check(OPERATOR_GUILD, "operator", window, limit_cents, label, cents=cents)


def concurrency_check(guild_id: int, user_id: int, max_concurrent: int | None) -> Check:
    """At most max_concurrent running jobs per member (None = unlimited, still counted)."""
    limit = None if max_concurrent is None else max_concurrent * JOB_UNITS
    return Check(guild_id, active_subject(user_id), None, limit, CONCURRENT, units=JOB_UNITS)


def job_checks(
    guild_id: int,
    user_id: int,
    user_rule: Rule | None,
    rules: Sequence[Rule],
    *,
    budget_cents: int | None,
    max_concurrent: int | None,
    base_cents: int | None = None,
) -> list[Check]:
    """Every counter one job is charged against: the member, the server pool, the operator's
    budget (charged base_cents, the cost before the server's multiplier, when given) and the
    member's jobs at once."""
    return [
        user_check(guild_id, user_id, user_rule),
        guild_check(guild_id, guild_rule(rules)),
        operator_check(budget_cents, cents=base_cents),
        concurrency_check(guild_id, user_id, max_concurrent),
    ]


def dm_checks(
    user_id: int,
    *,
    limit_cents: int,
    window: str,
    budget_cents: int | None,
    max_concurrent: int,
    base_cents: int,
) -> list[Check]:
    """The counters of a job in the bot's DMs: the user's DM allowance, the operator's budget and
    the user's jobs at once there (DMs are counted under guild id 0, beside the operator's budget)."""
    label = Text(f"rules.label.dm.{window}")
    return [
        Check(OPERATOR_GUILD, user_subject(user_id), window, limit_cents, label),
        operator_check(budget_cents, cents=base_cents),
        concurrency_check(OPERATOR_GUILD, user_id, max_concurrent),
    ]
