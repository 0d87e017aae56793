"""What the user reads: the compact result embed and a specific message for every error."""

from __future__ import annotations

import re

import discord

from bot.billing.costs import credits
from bot.errors import NanoBotError
from bot.jobs.service import JobResult

PROMPT_SHOWN = 300
MODEL_TEXT_SHOWN = 900
OK_COLOUR = discord.Colour.from_rgb(250, 204, 21)
ERROR_COLOUR = discord.Colour.red()
#: A link's scheme separator; a word joiner inside it keeps Discord from making the link clickable.
LINK = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*):(//)")
#: Mentions and custom emoji in text we echo: shown as text, never rendered.
MENTION = re.compile(r"<([@#][!&]?|a?:)")


def inert(text: str) -> str:
    """Text a user (or a model) wrote, shown as written: markdown escaped, links and mentions inert."""
    text = discord.utils.escape_markdown(text, as_needed=False)
    text = MENTION.sub(lambda m: "<\u2060" + m.group(1), text)
    return LINK.sub(lambda m: f"{m.group(1)}:\u2060{m.group(2)}", text)


def clip(text: str, limit: int) -> str:
    """Text cut to limit characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def result_embed(result: JobResult, title: str) -> discord.Embed:
    """Prompt (truncated), model, resolution, elapsed seconds, seed and the model's text if any."""
    embed = discord.Embed(title=title, colour=OK_COLOUR)
    if result.prompt:
        embed.description = clip(inert(clip(result.prompt, PROMPT_SHOWN)), 4096)
    embed.add_field(name="Model", value=clip(inert(f"{result.model} ({result.provider})"), 256))
    first = result.files[0] if result.files else None
    size = f"{first.width}×{first.height}" if first else "?"
    label = " · ".join(p for p in (result.resolution, result.aspect_ratio, size) if p)
    embed.add_field(name="Resolution", value=label)
    embed.add_field(name="Time", value=f"{result.elapsed:.1f} s")
    if result.seed is not None:
        more = " (+1 per image)" if len(result.files) > 1 else ""
        embed.add_field(name="Seed", value=f"{result.seed}{more}")
    if result.cost_cents:
        plural = "" if result.cost_cents == 100 else "s"
        embed.add_field(name="Cost", value=f"{credits(result.cost_cents)} credit{plural}")
    if result.text:
        embed.add_field(
            name="Model says", value=clip(inert(clip(result.text, MODEL_TEXT_SHOWN)), 1024), inline=False
        )
    if result.reencoded:
        embed.set_footer(text="Re-encoded to fit Discord's upload limit")
    return embed


def error_text(error: BaseException) -> tuple[str, str]:
    """(title, message) for any failure: our errors word themselves; unknown exceptions get a generic line."""
    if isinstance(error, NanoBotError):
        return error.title, error.reply_text()
    return (
        "💥 Something went wrong",
        "An unexpected error happened; it has been logged. Please try again.",
    )


def error_embed(error: BaseException) -> discord.Embed:
    """An error as a red embed."""
    title, message = error_text(error)
    return discord.Embed(title=title, description=clip(message, 4000), colour=ERROR_COLOUR)
