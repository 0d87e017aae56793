"""What the user reads: the compact result embed and a specific message for every error."""

from __future__ import annotations

import math
import re

import discord

from bot.costs import credits
from bot.errors import (
    AuthFailed,
    DeliveryFailed,
    ImageTooLarge,
    InputError,
    NanoBotError,
    NoImageReturned,
    OutOfCredits,
    ProviderError,
    RateLimited,
    Refused,
    SafetyBlocked,
    Timeout,
    Unavailable,
)
from bot.service import JobResult

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
    """Prompt (truncated), model, resolution, elapsed seconds and the model's text if any."""
    embed = discord.Embed(title=title, colour=OK_COLOUR)
    if result.prompt:
        embed.description = clip(inert(clip(result.prompt, PROMPT_SHOWN)), 4096)
    embed.add_field(name="Model", value=clip(inert(f"{result.model} ({result.provider})"), 256))
    first = result.files[0] if result.files else None
    size = f"{first.width}×{first.height}" if first else "?"
    label = " · ".join(p for p in (result.resolution, result.aspect_ratio, size) if p)
    embed.add_field(name="Resolution", value=label)
    embed.add_field(name="Time", value=f"{result.elapsed:.1f} s")
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
    """(title, message) for any failure; unknown exceptions get a generic line."""
    if isinstance(error, SafetyBlocked):
        return "🚫 Blocked by safety filters", _with_reason(error.message, error.reason)
    if isinstance(error, NoImageReturned):
        return "🖼️ No image returned", error.message
    if isinstance(error, RateLimited):
        when = "in a minute" if error.retry_after is None else f"in {max(1, math.ceil(error.retry_after))} s"
        return "⏳ Rate limited", f"The image service is busy. Try again {when}."
    if isinstance(error, OutOfCredits):
        return "🔧 Provider account problem", (
            "The image service says this bot's account has run out of credits; whoever runs the "
            "bot needs to top it up or add another key. Nothing was charged."
        )
    if isinstance(error, AuthFailed):
        return "🔧 Provider account problem", (
            "The image service refused this bot's account; whoever runs the bot needs to check "
            "its provider key. Nothing was charged."
        )
    if isinstance(error, Timeout):
        return "⌛ Timed out", f"{error.message}. Try again, perhaps at a lower resolution."
    if isinstance(error, Unavailable):
        return "🛠️ Provider unavailable", f"{error.message}"
    if isinstance(error, ImageTooLarge):
        return "📦 File too large", error.message
    if isinstance(error, InputError):
        return "⚠️ Bad input", error.message
    if isinstance(error, DeliveryFailed):
        return "📮 Discord refused the image", error.message
    if isinstance(error, Refused):
        return error.title, error.message
    if isinstance(error, ProviderError | NanoBotError):
        return f"⚠️ {error.title}", error.message
    return (
        "💥 Something went wrong",
        "An unexpected error happened; it has been logged. Please try again.",
    )


def _with_reason(message: str, reason: str | None) -> str:
    """The message, naming the reason code when the message does not already."""
    return message if not reason or reason in message else f"{message} ({reason})"


def error_embed(error: BaseException) -> discord.Embed:
    """An error as a red embed."""
    title, message = error_text(error)
    return discord.Embed(title=title, description=clip(message, 4000), colour=ERROR_COLOUR)
