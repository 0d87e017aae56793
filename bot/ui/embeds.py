"""What the user reads: the compact result embed and a specific message for every error."""

from __future__ import annotations

import functools
import re
from urllib.parse import quote, quote_plus, urlsplit

import discord

from bot.errors import NanoBotError
from bot.i18n import Credits, Words, render, t
from bot.jobs.ids import job_code
from bot.jobs.prompts import shown_prompt
from bot.jobs.service import JobResult
from bot.providers.base import Sources

PROMPT_SHOWN = 300
MODEL_TEXT_SHOWN = 900
OK_COLOUR = discord.Colour.from_rgb(250, 204, 21)
ERROR_COLOUR = discord.Colour.red()
#: A link's scheme separator; a word joiner inside it keeps Discord from making the link clickable.
LINK = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*):(//)")
#: Mentions and custom emoji in text we echo: shown as text, never rendered.
MENTION = re.compile(r"<([@#][!&]?|a?:)")
#: How much of Google Search grounding's sources a result shows (Discord's field value limit: 1024).
SOURCES_SHOWN = 5
QUERIES_SHOWN = 3
SOURCE_TITLE_SHOWN = 80
FIELD_LIMIT = 1024
#: Characters left as they are in a shown link; anything else (brackets, spaces, quotes) is %-encoded
#: so that it cannot end the markdown link early.
LINK_SAFE = ":/?#@!$&+,;=%-._~"


def inert(text: str) -> str:
    """Text a user (or a model) wrote, shown as written: markdown escaped, links and mentions inert."""
    text = discord.utils.escape_markdown(text, as_needed=False)
    text = MENTION.sub(lambda m: "<\u2060" + m.group(1), text)
    return LINK.sub(lambda m: f"{m.group(1)}:\u2060{m.group(2)}", text)


def clip(text: str, limit: int) -> str:
    """Text cut to limit characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def result_embed(result: JobResult, title: Words, locale: str | None = None) -> discord.Embed:
    """Prompt (truncated), model, resolution, elapsed seconds, seed and the model's text if any, in
    the locale's language."""
    embed = discord.Embed(title=render(title, locale), colour=OK_COLOUR)
    if prompt := shown_prompt(result.prompt):  # the member's words, not what was said to the model
        embed.description = clip(inert(clip(prompt, PROMPT_SHOWN)), 4096)
    field = functools.partial(_field, embed, locale)
    field("result.field.model", clip(inert(f"{result.model} ({result.provider})"), 256))
    first = result.files[0] if result.files else None
    size = f"{first.width}×{first.height}" if first else "?"
    field(
        "result.field.resolution", " · ".join(p for p in (result.resolution, result.aspect_ratio, size) if p)
    )
    field("result.field.time", t(locale, "result.time", seconds=round(result.elapsed, 1)))
    if result.turn_id is not None:  # what /show takes to post it again
        field("result.field.job", f"`{job_code(result.turn_id)}`")
    if result.seed is not None:
        seed = (
            t(locale, "result.seed.per_image", seed=result.seed)
            if len(result.files) > 1
            else str(result.seed)
        )
        field("result.field.seed", seed)
    if result.references:
        field("result.field.references", t(locale, "result.references", count=result.references))
    if result.cost_cents:
        amount = Credits(result.cost_cents)
        field("result.field.cost", t(locale, "result.cost", credits=amount, count=amount))
    if result.text:
        field("result.field.model_says", clip(inert(clip(result.text, MODEL_TEXT_SHOWN)), 1024), inline=False)
    if result.sources and (shown := sources_text(result.sources)):
        field("result.field.sources", shown, inline=False)
    if result.reencoded:
        embed.set_footer(text=t(locale, "result.reencoded"))
    return embed


def _field(embed: discord.Embed, locale: str | None, key: str, value: str, *, inline: bool = True) -> None:
    """A field named by the catalogue."""
    embed.add_field(name=t(locale, key), value=value, inline=inline)


def link_text(text: str) -> str:
    """Provider text as the words of a markdown link: one line, no brackets, inert, short."""
    flat = " ".join(text.replace("[", "(").replace("]", ")").split())
    return clip(discord.utils.escape_mentions(inert(clip(flat, SOURCE_TITLE_SHOWN))), 2 * SOURCE_TITLE_SHOWN)


def safe_link(uri: str) -> str | None:
    """An http(s) link fit for a markdown link's target (None: not one to show)."""
    try:
        parts = urlsplit(uri.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return quote(uri.strip(), safe=LINK_SAFE)


def sources_text(sources: Sources) -> str:
    """The searches run (each a link to its Google results) and up to five pages drawn on, as
    markdown links within one field's 1024 characters; titles and queries made inert."""
    searched = ""
    for query in sources.queries[:QUERIES_SHOWN]:
        words = clip(query, SOURCE_TITLE_SHOWN)
        item = f"[{link_text(query)}](https://www.google.com/search?q={quote_plus(words)})"
        longer = f"{searched} · {item}" if searched else f"🔎 {item}"
        if len(longer) <= FIELD_LIMIT // 2:  # the pages keep at least half of the field
            searched = longer
    lines = [searched] if searched else []
    pages = [(title, link) for title, uri in sources.pages if (link := safe_link(uri))]
    for title, link in pages[:SOURCES_SHOWN]:
        line = f"• [{link_text(title)}]({link})"
        if len("\n".join([*lines, line])) <= FIELD_LIMIT:  # a link cut short would lead nowhere
            lines.append(line)
    return "\n".join(lines)


def error_text(error: BaseException, locale: str | None = None) -> tuple[str, str]:
    """(title, message) for any failure in the locale's language: our errors word themselves; unknown
    exceptions get a generic line."""
    if isinstance(error, NanoBotError):
        return error.title_text(locale), error.reply_text(locale)
    return t(locale, "error.unexpected.title"), t(locale, "error.unexpected.body")


def error_embed(error: BaseException, locale: str | None = None) -> discord.Embed:
    """An error as a red embed, in the locale's language."""
    title, message = error_text(error, locale)
    return discord.Embed(title=title, description=clip(message, 4000), colour=ERROR_COLOUR)
