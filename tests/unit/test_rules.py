"""Quota rules without a database: UTC windows, whose rule applies, and the counters a job is charged."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from bot.billing.rules import (
    EPOCH,
    JOB_UNITS,
    OPERATOR_GUILD,
    Check,
    Rule,
    counter_start,
    dm_checks,
    effective_user_rule,
    generosity,
    guild_check,
    job_checks,
    resets_at,
    user_check,
    window_end,
    window_start,
)
from bot.i18n import Text, catalogue

G, U = 555, 42


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """A UTC datetime."""
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def rule(scope: str, target: int, limit: int | None, *, blocked: bool = False, window: str = "day") -> Rule:
    """A rule in guild G."""
    return Rule(G, scope, target, limit, blocked, window)


# --- windows -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "now", "start", "end"),
    [
        ("day", utc(2025, 6, 4, 13, 5), utc(2025, 6, 4), utc(2025, 6, 5)),
        ("day", utc(2025, 6, 4), utc(2025, 6, 4), utc(2025, 6, 5)),  # midnight opens a new day
        ("day", utc(2025, 6, 30, 23, 59, 59), utc(2025, 6, 30), utc(2025, 7, 1)),  # month rollover
        ("day", utc(2025, 12, 31, 18), utc(2025, 12, 31), utc(2026, 1, 1)),  # year rollover
        ("week", utc(2025, 6, 4, 13), utc(2025, 6, 2), utc(2025, 6, 9)),  # Wednesday → Monday
        ("week", utc(2025, 6, 2), utc(2025, 6, 2), utc(2025, 6, 9)),  # Monday midnight opens a week
        ("week", utc(2025, 6, 1, 23, 59), utc(2025, 5, 26), utc(2025, 6, 2)),  # Sunday is the last day
        ("week", utc(2026, 1, 1, 9), utc(2025, 12, 29), utc(2026, 1, 5)),  # a week across New Year
        ("month", utc(2025, 6, 4, 13), utc(2025, 6, 1), utc(2025, 7, 1)),
        ("month", utc(2025, 6, 1), utc(2025, 6, 1), utc(2025, 7, 1)),
        ("month", utc(2024, 2, 29, 23), utc(2024, 2, 1), utc(2024, 3, 1)),  # leap day
        ("month", utc(2025, 12, 31, 23, 59, 59), utc(2025, 12, 1), utc(2026, 1, 1)),  # December → January
    ],
)
def test_windows_start_and_end_on_utc_calendar_boundaries(
    window: str, now: datetime, start: datetime, end: datetime
) -> None:
    assert (window_start(window, now), window_end(window, now)) == (start, end)


def test_windows_read_other_zones_and_naive_times_as_utc() -> None:
    # Monday 1 June 2025 01:00 in UTC+3 is still Sunday 31 May in UTC: the previous week and month.
    moscow = datetime(2025, 6, 1, 1, 0, tzinfo=timezone(timedelta(hours=3)))
    assert window_start("day", moscow) == utc(2025, 5, 31)
    assert window_start("week", moscow) == utc(2025, 5, 26)
    assert window_end("month", moscow) == utc(2025, 6, 1)
    assert window_start("day", datetime(2025, 6, 4, 13)) == utc(2025, 6, 4)


def test_unwindowed_counters_start_at_the_epoch_and_never_reset() -> None:
    now = utc(2025, 6, 4, 13)
    assert counter_start(None, now) == EPOCH
    assert resets_at(None, now) is None
    assert counter_start("week", now) == utc(2025, 6, 2)
    assert resets_at("week", now) == utc(2025, 6, 9)


def test_unknown_windows_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown quota window 'hour'"):
        window_start("hour", utc(2025, 6, 4))
    with pytest.raises(ValueError, match="unknown quota window"):
        Check(G, "user:1", "year", 100, "x")


# --- which rule applies ------------------------------------------------------------------------------


def test_generosity_orders_blocked_small_large_unlimited() -> None:
    ordered = [
        rule("role", 1, 500, blocked=True),
        rule("role", 2, 100),
        rule("role", 3, 5_000, window="month"),
        rule("role", 4, None),
    ]
    assert sorted(reversed(ordered), key=generosity) == ordered
    assert generosity(rule("role", 5, 0)) > generosity(rule("role", 6, None, blocked=True))


def test_a_user_rule_beats_every_role_rule() -> None:
    rules = [rule("role", 1, None), rule("user", U, 50), rule("user", U + 1, None)]
    assert effective_user_rule(rules, U, {1}) == rule("user", U, 50)


def test_the_most_generous_matching_role_wins() -> None:
    rules = [rule("role", 1, 100), rule("role", 2, 900), rule("role", 3, None), rule("default", 0, 10)]
    assert effective_user_rule(rules, U, {1, 2}) == rule("role", 2, 900)
    assert effective_user_rule(rules, U, {1, 2, 3}) == rule("role", 3, None)
    assert effective_user_rule(rules, U, {7}) == rule("default", 0, 10)  # no matching role: the default


def test_everyone_is_the_default_not_a_role_that_overrides_stricter_ones() -> None:
    everyone = rule("role", G, None)  # @everyone's id is the server's
    rules = [everyone, rule("role", 1, 100)]
    assert effective_user_rule(rules, U, {G, 1}) == rule("role", 1, 100)
    assert effective_user_rule(rules, U, {G}) == everyone
    assert effective_user_rule(rules, U, set()) == everyone


def test_a_default_rule_is_preferred_to_an_everyone_rule() -> None:
    rules = [rule("role", G, None), rule("default", 0, 300)]
    assert effective_user_rule(rules, U, {G}) == rule("default", 0, 300)


def test_no_rule_at_all_means_none() -> None:
    assert effective_user_rule([rule("guild", 0, 1_000), rule("role", 9, 5)], U, {1}) is None


def test_a_blocked_rule_enforces_zero() -> None:
    assert rule("user", U, 500, blocked=True).effective_limit == 0
    assert rule("user", U, 500).effective_limit == 500
    assert rule("user", U, None).effective_limit is None


@pytest.mark.parametrize(
    ("scope", "target", "limit", "message"),
    [
        ("channel", 1, 5, "unknown quota scope"),
        ("user", 1, -1, "cannot be negative"),
        ("guild", 3, 5, "a guild rule has target_id 0"),
        ("default", 3, 5, "a default rule has target_id 0"),
    ],
)
def test_rules_that_cannot_be_enforced_are_refused(scope: str, target: int, limit: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rule(scope, target, limit)


# --- the counters a job is charged against ------------------------------------------------------------


def test_check_amount_units_then_fixed_cents_then_the_cost() -> None:
    assert Check(G, "user:1", "day", None, "x").amount(250) == 250
    assert Check(G, "operator", "day", None, "x", cents=100).amount(250) == 100
    assert Check(G, "active:1", None, None, "x", units=JOB_UNITS, cents=7).amount(250) == JOB_UNITS
    assert Check(G, "operator", "day", None, "x", cents=0).amount(250) == 0


@pytest.mark.parametrize("bad", [{"limit_cents": -1}, {"units": -1}, {"cents": -1}])
def test_checks_refuse_negative_amounts(bad: dict[str, int]) -> None:
    fields: dict[str, Any] = {"limit_cents": None, "label": "x", **bad}
    with pytest.raises(ValueError, match="negative"):
        Check(G, "user:1", "day", **fields)


def english(check: Check) -> Check:
    """The check with its label in English (labels are catalogue messages)."""
    return replace(check, label=str(check.label))


def test_user_and_guild_checks_name_their_window() -> None:
    assert english(user_check(G, U, rule("user", U, 300, window="week"))) == Check(
        G, f"user:{U}", "week", 300, "your weekly limit"
    )
    assert english(user_check(G, U, rule("user", U, 300, blocked=True))) == Check(
        G, f"user:{U}", "day", 0, "a block on your account"
    )
    assert english(user_check(G, U, None)) == Check(G, f"user:{U}", "day", None, "your daily limit")
    assert english(guild_check(G, rule("guild", 0, 9_000, window="month"))) == Check(
        G, "guild", "month", 9_000, "the server's monthly pool"
    )


def test_job_checks_charge_member_pool_operator_and_concurrency() -> None:
    rules = [rule("guild", 0, 10_000, window="week"), rule("default", 0, 300)]
    checks = job_checks(G, U, rules[1], rules, budget_cents=5_000, max_concurrent=2, base_cents=100)
    assert [english(check) for check in checks] == [
        Check(G, f"user:{U}", "day", 300, "your daily limit"),
        Check(G, "guild", "week", 10_000, "the server's weekly pool"),
        Check(OPERATOR_GUILD, "operator", "day", 5_000, "the bot's daily budget", cents=100),
        Check(G, f"active:{U}", None, 2 * JOB_UNITS, "your concurrent jobs", units=JOB_UNITS),
    ]
    # A server charging double: the member and the pool pay 200, the operator's budget the unscaled 100.
    assert [check.amount(200) for check in checks] == [200, 200, 100, JOB_UNITS]


def test_job_checks_without_limits_still_count_everything() -> None:
    checks = job_checks(G, U, None, [], budget_cents=None, max_concurrent=None)
    assert [(c.subject, c.limit_cents) for c in checks] == [
        (f"user:{U}", None),
        ("guild", None),
        ("operator", None),
        (f"active:{U}", None),
    ]
    assert [check.amount(150) for check in checks] == [150, 150, 150, JOB_UNITS]  # no base: the cost


def test_dm_checks_live_beside_the_operator_budget() -> None:
    checks = dm_checks(U, limit_cents=500, window="week", budget_cents=None, max_concurrent=1, base_cents=80)
    assert [english(check) for check in checks] == [
        Check(OPERATOR_GUILD, f"user:{U}", "week", 500, "your weekly allowance in DMs"),
        Check(OPERATOR_GUILD, "operator", "day", None, "the bot's daily budget", cents=80),
        Check(OPERATOR_GUILD, f"active:{U}", None, JOB_UNITS, "your concurrent jobs", units=JOB_UNITS),
    ]
    assert [check.amount(80) for check in checks] == [80, 80, JOB_UNITS]


@pytest.mark.parametrize("window", ["day", "week", "month"])
def test_every_counter_is_named_in_every_language(window: str) -> None:
    checks = [
        user_check(G, U, rule("user", U, 300, window=window)),
        user_check(G, U, rule("user", U, 300, window=window, blocked=True)),
        guild_check(G, rule("guild", 0, 300, window=window)),
        *job_checks(G, U, None, [], budget_cents=None, max_concurrent=1),
        *dm_checks(U, limit_cents=1, window=window, budget_cents=None, max_concurrent=1, base_cents=1),
    ]
    for check in checks:
        assert isinstance(check.label, Text) and catalogue().has(check.label.key), check.label
        english = check.label.render(None)
        for locale in ("es-ES", "pt-BR", "ja"):
            assert check.label.render(locale) not in ("", english, check.label.key), (check.label, locale)
