"""/usage and /audit on Discord: a member's or the server's usage as an embed with its chart, the
audit list, and the audit export's CSV file."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache

import discord
from babel.dates import format_skeleton
from babel.numbers import get_decimal_symbol

from bot.billing.allowance import Allowance
from bot.billing.reports import HISTORY_DAYS, DaySpend, JobLine, audit_csv
from bot.billing.rules import AuditRow
from bot.billing.server_rules import discord_time
from bot.i18n import Credits, Text, Words, language_of, render, t
from bot.imaging.chart import Chart, Day, Labels, Panel, draw_chart, drawable
from bot.imaging.pool import run_image
from bot.jobs.prompts import shown_prompt
from bot.ui.embeds import inert
from bot.ui.outcomes import kind_words, outcome_words

COLOUR = discord.Colour.blurple()
CHART_FILE = "usage.png"
#: Cells of the one-line bar that screen readers read.
BAR_CELLS = 10
#: Characters of a prompt one line of /audit shows.
PROMPT_SHOWN = 60
#: Lines the /audit list shows.
AUDIT_LINES = 20


@dataclass(frozen=True, slots=True)
class MemberUsage:
    """What /usage shows a member: their allowance, its limit as written, the server pool, their days."""

    title: Words
    mine: Allowance
    days: Sequence[DaySpend]
    window_start: date
    pool: Allowance | None = None


@dataclass(frozen=True, slots=True)
class ServerUsage:
    """What /usage server shows: the server's counter, its days and its top members (id, cents)."""

    name: str
    pool: Allowance
    days: Sequence[DaySpend]
    window_start: date
    top_window: Sequence[tuple[int, int]]
    top_history: Sequence[tuple[int, int]]


def _credits(cents: int | None) -> Text:
    """An amount of credits ("1 credits": the number as /usage has always written it)."""
    return Text("usage.credits", amount=Credits(cents), count=Credits(cents))


def limit_text(allowance: Allowance) -> Text:
    """A counter's limit as /usage writes it ("5 per day", "∞ per day", blocked)."""
    if allowance.blocked:
        return Text("usage.blocked")
    return Text(
        "usage.limit", amount=Credits(allowance.limit_cents), window=Text(f"quota.window.{allowance.window}")
    )


def text_bar(allowance: Allowance, locale: str | None) -> str:
    """One line a screen reader can read: ▓ spent, ▒ reserved, ░ left, then the numbers."""
    period = Text(f"usage.period.{allowance.window}")
    used = Credits(allowance.used_cents)
    limit = allowance.limit_cents
    if allowance.blocked or limit == 0:  # a limit of nothing allows no job: as blocked, not "all spent"
        return t(locale, "usage.bar.blocked", used=used, count=used, period=period)
    if limit is None:
        return t(locale, "usage.bar.unlimited", used=used, count=used, period=period)
    share = allowance.used_cents / limit
    taken = (allowance.used_cents + allowance.reserved_cents) / limit
    spent = min(BAR_CELLS, round(share * BAR_CELLS))
    held = min(BAR_CELLS, round(taken * BAR_CELLS)) - spent
    bar = "▓" * spent + "▒" * max(0, held) + "░" * (BAR_CELLS - spent - max(0, held))
    return t(
        locale, "usage.bar", bar=bar, used=used, limit=Credits(limit), count=Credits(limit), period=period
    )


@cache
def chart_language(locale: str | None) -> str | None:
    """The locale the chart's words are drawn in: the member's, or English when no font here has
    their letters (Pillow's own font has no accents; Japanese needs a CJK font installed)."""
    return locale if drawable(_label_texts(locale)) else None


def _label_texts(locale: str | None) -> list[str]:
    """Every word a chart may show in a language."""
    labels = _labels(locale)
    titles = [t(locale, f"usage.chart.window.{w}") for w in ("day", "week", "month")]
    extra = [t(locale, key) for key in ("usage.chart.title", "usage.chart.server", "usage.chart.history")]
    return [labels.spent, labels.reserved, labels.limit, labels.running, labels.unit, *titles, *extra]


def _labels(locale: str | None) -> Labels:
    """The legend and unit in a language."""
    return Labels(
        spent=t(locale, "usage.chart.spent"),
        reserved=t(locale, "usage.chart.reserved"),
        limit=t(locale, "usage.chart.limit"),
        running=t(locale, "usage.chart.running"),
        unit=t(locale, "usage.chart.unit"),
        decimal=get_decimal_symbol(language_of(locale)),
    )


def _bars(days: Sequence[DaySpend], locale: str | None) -> tuple[Day, ...]:
    """The chart's bars for these days, labelled with the day of the month (and the month, in the
    language's order, where the chart needs it)."""
    language = language_of(locale)
    return tuple(
        Day(
            d.day,
            d.spent_cents,
            d.reserved_cents,
            str(d.day.day),
            str(format_skeleton("Md", d.day, locale=language)),
        )
        for d in days
    )


def build_chart(
    title_key: str, allowance: Allowance, days: Sequence[DaySpend], window_start: date, locale: str | None
) -> Chart:
    """Two panels: the current window (its limit as a line, a running total when longer than a day)
    and the last days (the limit as a line when it is a daily one), in the locale's words (a locale
    from chart_language: one whose letters a font here can draw)."""
    limit = None if allowance.blocked else allowance.limit_cents
    window = [d for d in days if d.day >= window_start]
    daily = allowance.window == "day"
    now = Panel(
        t(locale, f"usage.chart.window.{allowance.window}"),
        _bars(window, locale),
        limit=limit,
        running=not daily,
    )
    history = days[-HISTORY_DAYS:]
    past = Panel(t(locale, "usage.chart.history"), _bars(history, locale), limit=limit if daily else None)
    return Chart(t(locale, title_key), (now, past), _labels(locale))


async def chart_file(chart: Chart, description: str) -> discord.File:
    """The chart drawn in the image pool, as an attachment (its alt text: the one-line bar)."""
    png = await run_image(draw_chart, chart)
    return discord.File(io.BytesIO(png), filename=CHART_FILE, description=description[:1024])


async def member_reply(view: MemberUsage, locale: str | None) -> tuple[discord.Embed, discord.File]:
    """The member's usage: the bar, the numbers, and the chart under them."""
    bar = text_bar(view.mine, locale)
    embed = discord.Embed(title=render(view.title, locale), description=bar, colour=COLOUR)
    mine = view.mine
    embed.add_field(name=t(locale, "usage.field.used"), value=_credits(mine.used_cents).render(locale))
    embed.add_field(
        name=t(locale, "usage.field.reserved"), value=_credits(mine.reserved_cents).render(locale)
    )
    embed.add_field(name=t(locale, "usage.field.limit"), value=limit_text(view.mine).render(locale))
    if mine.resets_at is not None:
        embed.add_field(name=t(locale, "usage.field.resets"), value=discord_time(mine.resets_at))
    if (pool := view.pool) is not None:
        shared = Text(
            "usage.pool", used=Credits(pool.used_cents), limit=Credits(pool.limit_cents), window=_window(pool)
        )
        embed.add_field(name=t(locale, "usage.field.pool"), value=shared.render(locale), inline=False)
    drawn_in = await run_image(chart_language, locale)  # fonts are loaded and probed off the event loop
    chart = build_chart("usage.chart.title", mine, view.days, view.window_start, drawn_in)
    embed.set_image(url=f"attachment://{CHART_FILE}")
    return embed, await chart_file(chart, bar)


def _window(allowance: Allowance) -> Text:
    """The window's name ("day")."""
    return Text(f"quota.window.{allowance.window}")


def _top(members: Sequence[tuple[int, int]], locale: str | None) -> str:
    """The top members, one line each, as mentions (shown, never pinged, in an embed)."""
    lines = [
        t(
            locale,
            "usage.server.top_line",
            rank=n,
            member=f"<@{user}>",
            amount=Credits(cents),
            count=Credits(cents),
        )
        for n, (user, cents) in enumerate(members, 1)
    ]
    return "\n".join(lines) or t(locale, "usage.server.nobody")


async def server_reply(view: ServerUsage, locale: str | None) -> tuple[discord.Embed, discord.File]:
    """The server's usage: its pool bar, spend, running jobs, top members and the chart."""
    pool = view.pool
    bar = text_bar(pool, locale)
    embed = discord.Embed(
        title=t(locale, "usage.server.title", server=view.name), description=bar, colour=COLOUR
    )
    period = Text(f"usage.period.{pool.window}")
    history = sum(d.spent_cents for d in view.days[-HISTORY_DAYS:])  # running jobs have their own field
    embed.add_field(
        name=t(locale, "usage.server.window", period=period), value=_credits(pool.used_cents).render(locale)
    )
    embed.add_field(name=t(locale, "usage.server.history"), value=_credits(history).render(locale))
    embed.add_field(
        name=t(locale, "usage.server.running"), value=_credits(pool.reserved_cents).render(locale)
    )
    embed.add_field(
        name=t(locale, "usage.server.top_window", period=period), value=_top(view.top_window, locale)
    )
    embed.add_field(name=t(locale, "usage.server.top_history"), value=_top(view.top_history, locale))
    drawn_in = await run_image(chart_language, locale)  # fonts are loaded and probed off the event loop
    chart = build_chart("usage.chart.server", pool, view.days, view.window_start, drawn_in)
    embed.set_image(url=f"attachment://{CHART_FILE}")
    return embed, await chart_file(chart, bar)


def audit_embed(rows: Sequence[AuditRow], locale: str | None) -> discord.Embed:
    """The newest jobs, one line each: when, who, what, cost, outcome and the prompt's start."""
    lines = [
        t(
            locale,
            "audit.line",
            time=discord_time(r.created_at),
            member=f"<@{r.user_id}>",
            kind=kind_words(r.kind),
            amount=Credits(r.cost_cents),
            outcome=outcome_words(r.outcome, r.status),
            # One line per job: a prompt's line breaks and markdown cannot make lines of their own.
            prompt=inert(" ".join(shown_prompt(r.prompt).split())[:PROMPT_SHOWN]),
        )
        for r in rows
    ]
    description = "\n".join(lines)[:4000] or t(locale, "audit.none")
    return discord.Embed(title=t(locale, "audit.title"), description=description)


async def export_reply(
    lines: Sequence[JobLine], capped: bool, max_bytes: int, stem: str, locale: str | None
) -> tuple[discord.Embed, discord.File | None]:
    """The export's embed and its CSV (written off the loop: thousands of rows); no file when no
    job matches."""
    if not lines:
        return discord.Embed(title=t(locale, "audit.export.title"), description=t(locale, "audit.none")), None
    data, written = await asyncio.to_thread(audit_csv, lines, max_bytes)
    said = [t(locale, "audit.export.body", count=written)]
    if capped or written < len(lines):
        said.append(t(locale, "audit.export.capped", count=written))
    embed = discord.Embed(title=t(locale, "audit.export.title"), description="\n".join(said), colour=COLOUR)
    return embed, discord.File(io.BytesIO(data), filename=f"{stem}.csv")
