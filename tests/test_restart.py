"""Restart safety: jobs left by a process that died are refunded and their users told in the channel."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from bot.quota_store import QuotaStore
from bot.quotas import Check, Reservation, user_subject
from bot.recovery import Recovery
from bot.storage.db import Database
from bot.storage.tables import instances, utcnow
from tests.botenv import running_bot
from tests.fakes.discord import FakeDiscord
from tests.fakes.providers import FakeGemini

KEY = "restart-key"


async def leave_a_dead_job(db_url: str, guild: int, channel: int, user: int) -> int:
    """What a crashed process leaves behind: a reservation held by an owner that stopped beating."""
    db = await Database.open(db_url)
    try:
        quotas = QuotaStore(db)
        dead = Recovery(db, quotas, "dead-host:1:abcd", stale_after=90)
        await dead.heartbeat()
        held = await quotas.reserve(
            guild_id=guild,
            user_id=user,
            cost_cents=350,
            kind="imagine",
            prompt="a castle at dusk",
            checks=[Check(guild, user_subject(user), "day", None, "your daily limit")],
            channel_id=channel,
            owner=dead.owner,
            now=utcnow() - timedelta(minutes=5),
        )
        async with db.begin() as conn:  # the dead process's last heartbeat was long ago
            await conn.execute(instances.update().values(seen_at=utcnow() - timedelta(minutes=5)))
        assert isinstance(held, Reservation)
        return held.id
    finally:
        await db.close()


async def test_interrupted_jobs_are_refunded_and_users_told(tmp_path: Path) -> None:
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as gemini:
        guild, channel = int(fake.guild_id), int(fake.channel_id)
        alice = int(fake.users["alice"]["id"])
        db_url = f"sqlite+aiosqlite:///{tmp_path / 'nanobot.db'}"
        reservation = await leave_a_dead_job(db_url, guild, channel, alice)
        entry = {"name": "google", "kind": "gemini", "base_url": gemini.base_url, "api_key": KEY}
        async with running_bot(fake, tmp_path, entry) as bot:
            notice = await fake.wait_for_message(
                lambda m: "interrupted" in (m.get("content") or ""), timeout=10
            )
            assert notice["content"].startswith(f"<@{alice}>")
            assert "Nothing was charged" in notice["content"]
            assert bot.quotas is not None
            usage = await bot.quotas.usage(guild, user_subject(alice), "day")
            assert (usage.used_cents, usage.reserved_cents) == (0, 0)
            [row] = await bot.quotas.audit(guild)
            assert row.id == reservation and row.status == "refunded" and "restart" in (row.outcome or "")
            # The bot's own jobs are never taken for orphans, and it keeps serving.
            inter = await fake.send_slash("imagine", {"prompt": "a new castle"})
            assert fake.files_of(await inter.wait_done())
            await asyncio.sleep(0.1)
            assert (
                len([m for m in fake.messages[fake.channel_id] if "interrupted" in (m.get("content") or "")])
                == 1
            )
