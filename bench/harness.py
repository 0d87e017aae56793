"""What every bot scenario shares: a fresh fake Discord, provider and real bot, and the jobs sent to it."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.base import Config
from bench.fakes import Assets, BenchDiscord, BenchGemini, TimedProvider, prompt_for
from bench.stats import LoopMonitor
from bot.app import NanoBot
from bot.config import Settings
from tests.botenv import running_bot
from tests.fakes.discord.interactions import InteractionHandle
from tests.fakes.discord.payloads import JSON
from tests.fakes.settings import FAST

KEY = "bench-gemini-key"


@dataclass
class Session:
    """A running bot with its fakes and the loop monitor."""

    bot: NanoBot
    fake: BenchDiscord
    provider: TimedProvider
    monitor: LoopMonitor
    config: Config
    users: list[str]
    failures: list[str] = field(default_factory=list)


@dataclass
class Job:
    """One command as the user saw it, with the provider's share of its time."""

    tag: str
    handle: InteractionHandle
    message: JSON | None
    error: str | None
    done_at: float | None = None

    @property
    def e2e(self) -> float | None:
        """Dispatch → the final answer (result or error) appeared."""
        return None if self.done_at is None else self.done_at - self.handle.created_at


def production_defaults() -> dict[str, Any]:
    """The settings tests shorten (timeouts, retries, progress updates), back at their real defaults."""
    fields = Settings.model_fields
    return {name: fields[name].default for name in FAST if name in fields}


@contextlib.asynccontextmanager
async def session(
    provider: TimedProvider,
    entry: dict[str, Any],
    config: Config,
    members: int | None = None,
    **overrides: Any,
) -> AsyncIterator[Session]:
    """A fresh fake Discord and real bot on a temp data dir, against an already built provider.

    `members` defaults to one per concurrent command; `overrides` change production settings.
    """
    fake = BenchDiscord()
    async with fake, provider:
        entry = {**entry, "base_url": provider.base_url}
        with tempfile.TemporaryDirectory(prefix="nanobot-bench-") as tmp:
            async with running_bot(fake, Path(tmp), entry, **{**production_defaults(), **overrides}) as bot:
                # One member per concurrent command: like real traffic, and under per-user limits.
                users = await fake.add_users(members or max(config.commands, config.jobs_4k))
                async with LoopMonitor() as monitor:
                    s = Session(bot, fake, provider, monitor, config, users)
                    yield s
        s.failures += [f"platform violation: {v}" for v in fake.violations]


async def finish(s: Session, tag: str, handle: InteractionHandle) -> Job:
    """Wait for the visible reply; a failure becomes a Job with an error, never an exception."""
    try:
        message = await s.fake.wait_final(handle, s.config.timeout)
    except Exception as e:  # InteractionFailed is an AssertionError; timeouts too: report, go on
        return Job(tag, handle, None, f"{type(e).__name__}: {e}")
    return Job(tag, handle, message, None, s.fake.final_at[message["id"]])


async def burst(s: Session, prefix: str, count: int, options: dict[str, Any]) -> list[Job]:
    """Dispatch `count` /imagine commands at once and wait for every reply."""
    tags = [f"{prefix}{n}" for n in range(count)]
    handles = await asyncio.gather(
        *(
            s.fake.send_slash("imagine", {"prompt": prompt_for(tag), **options}, user=s.users[n])
            for n, tag in enumerate(tags)
        )
    )
    return list(await asyncio.gather(*(finish(s, t, h) for t, h in zip(tags, handles, strict=True))))


def gemini(assets: Assets) -> tuple[BenchGemini, dict[str, Any]]:
    """Fake Gemini serving the pre-made 1K PNG, and its provider entry."""
    provider = BenchGemini(api_key=KEY)
    provider.premade[(1024, 1024, "PNG")] = assets.png_1k
    return provider, {"name": "google", "kind": "gemini", "api_key": KEY}
