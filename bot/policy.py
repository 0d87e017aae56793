"""Server rules applied before a job is charged: channel, age restriction, blocklist, bans, cooldown."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta

from bot.errors import Refused
from bot.storage.guilds import GuildConfig

#: Characters that hide words from a naive match (zero-width spaces and joiners, bidi controls).
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")


def normalize(text: str) -> str:
    """Case-folded NFKC text without invisible characters or repeated spaces (for blocklist matching)."""
    text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text)).casefold()
    return re.sub(r"\s+", " ", text).strip()


def blocked_phrase(prompt: str, blocklist: list[str]) -> str | None:
    """The first blocklisted phrase the prompt contains, if any."""
    clean = normalize(prompt)
    return next((phrase for phrase in blocklist if phrase and normalize(phrase) in clean), None)


def discord_time(moment: datetime) -> str:
    """A Discord timestamp that each user sees in their own time zone, relative ("in 3 hours")."""
    return f"<t:{int(moment.timestamp())}:R>"


def check_place(config: GuildConfig, channel_id: int, channel_nsfw: bool) -> None:
    """Refuse jobs outside the allowed channels or outside age-restricted channels when required."""
    if config.allowed_channels and channel_id not in config.allowed_channels:
        where = ", ".join(f"<#{c}>" for c in config.allowed_channels[:10])
        raise Refused("🚧 Not in this channel", f"Images can be made here: {where}.")
    if config.age_restricted_only and not channel_nsfw:
        raise Refused(
            "🚧 Not in this channel", "On this server images can only be made in age-restricted channels."
        )


def check_prompt(config: GuildConfig, prompt: str) -> None:
    """Refuse prompts containing a blocklisted phrase."""
    phrase = blocked_phrase(prompt, config.blocklist)
    if phrase is not None:
        raise Refused(
            "🚫 Prompt not allowed", f"Your prompt contains “{phrase}”, which this server does not allow."
        )


def check_cooldown(config: GuildConfig, last_job: datetime | None, now: datetime) -> None:
    """Refuse a job that comes sooner than the cooldown allows."""
    if not config.cooldown_seconds or last_job is None:
        return
    ready = last_job + timedelta(seconds=config.cooldown_seconds)
    if ready > now:
        wait = max(1, int((ready - now).total_seconds() + 0.999))
        raise Refused("⏱️ Cooldown", f"Please wait {wait} s between images; try again {discord_time(ready)}.")
