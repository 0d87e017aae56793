"""Restart safety: jobs left by a process that died are refunded and their users told in the channel."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from bot.billing.rules import Check, Reservation, user_subject
from bot.billing.store import QuotaStore
from bot.jobs.recovery import Recovery, new_owner
from bot.storage.db import Database
from bot.storage.tables import instances, utcnow
from tests.botenv import eventually, running_bot
from tests.fakes.discord import FakeDiscord
from tests.fakes.providers import FakeGemini

KEY = "restart-key"


async def leave_a_dead_job(
    db_url: str,
    guild: int,
    channel: int,
    user: int,
    *,
    owner: str = "dead-host.abcdef:1234abcd",
    silent_for: timedelta = timedelta(minutes=5),
    prompt: str = "a castle at dusk",
) -> int:
    """What a crashed process leaves behind: a reservation held by an owner whose last heartbeat
    was `silent_for` ago (seconds ago, for a process restarted at once by Docker or systemd)."""
    db = await Database.open(db_url)
    try:
        quotas = QuotaStore(db)
        dead = Recovery(db, quotas, owner, stale_after=90)
        await dead.heartbeat()
        held = await quotas.reserve(
            guild_id=guild,
            user_id=user,
            cost_cents=350,
            kind="imagine",
            prompt=prompt,
            checks=[Check(guild, user_subject(user), "day", None, "your daily limit")],
            channel_id=channel,
            owner=dead.owner,
            now=utcnow() - timedelta(minutes=5),
        )
        async with db.begin() as conn:  # the dead process's last heartbeat
            last_beat = instances.update().where(instances.c.owner == owner)
            await conn.execute(last_beat.values(seen_at=utcnow() - silent_for))
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
            notice = await fake.wait_for_message(lambda m: "interrupted" in (m.get("content") or ""))
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


def notices(fake: FakeDiscord) -> list[str]:
    """The interruption notices posted in the general channel."""
    texts = [m.get("content") or "" for m in fake.messages[fake.channel_id]]
    return [t for t in texts if "interrupted" in t]


@pytest.mark.parametrize("instance_id", [None, "deploy-a"])
async def test_a_predecessor_restarted_at_once_is_settled_at_start(
    tmp_path: Path, instance_id: str | None
) -> None:
    """Docker restarts a crashed bot within seconds: its heartbeat is fresh, but it is this instance
    (same host, same shards) in an earlier boot, so its jobs are refunded at start, not minutes later.
    A job of another live process (another host) is left alone."""
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as gemini:
        guild, channel = int(fake.guild_id), int(fake.channel_id)
        alice, admin = int(fake.users["alice"]["id"]), int(fake.users["admin"]["id"])
        db_url = f"sqlite+aiosqlite:///{tmp_path / 'nanobot.db'}"
        mine = await leave_a_dead_job(
            db_url, guild, channel, alice, owner=new_owner(None, instance_id), silent_for=timedelta(seconds=5)
        )
        other = new_owner(None, host="another-host")
        theirs = await leave_a_dead_job(
            db_url, guild, channel, admin, owner=other, silent_for=timedelta(seconds=5), prompt="a live job"
        )
        entry = {"name": "google", "kind": "gemini", "base_url": gemini.base_url, "api_key": KEY}
        async with running_bot(fake, tmp_path, entry, instance_id=instance_id) as bot:
            notice = await fake.wait_for_message(lambda m: "interrupted" in (m.get("content") or ""))
            assert notice["content"].startswith(f"<@{alice}>") and "restarted" in notice["content"]
            assert bot.quotas is not None
            status = {row.id: row.status for row in await bot.quotas.audit(guild)}
            assert status == {mine: "refunded", theirs: "reserved"}
            usage = await bot.quotas.usage(guild, user_subject(alice), "day")
            assert (usage.used_cents, usage.reserved_cents) == (0, 0)
            inter = await fake.send_slash("imagine", {"prompt": "a new castle"})
            assert fake.files_of(await inter.wait_done())
        assert len(notices(fake)) == 1


async def test_shutdown_refunds_and_tells_the_jobs_it_cannot_finish(tmp_path: Path) -> None:
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as gemini:
        guild = int(fake.guild_id)
        alice, admin = fake.users["alice"]["id"], fake.users["admin"]["id"]
        entry = {"name": "google", "kind": "gemini", "base_url": gemini.base_url, "api_key": KEY}
        async with running_bot(fake, tmp_path, entry, shutdown_grace=0.5, max_running_jobs=1) as bot:
            gemini.delay = 30.0
            await fake.send_slash("imagine", {"prompt": "a very slow cathedral"})
            await eventually(lambda: len(gemini.requests) == 1, what="the provider call")
            queued = await fake.send_slash("imagine", {"prompt": "a waiting cathedral"}, user="admin")
            await fake.wait_for_message(lambda m: "Queued" in (m.get("content") or ""))
            assert queued.original_id is not None
            db_url = bot.settings.effective_database_url
        running, waiting = sorted(notices(fake), key=lambda text: not text.startswith(f"<@{alice}>"))
        assert running.startswith(
            f"<@{alice}> ⚠️ Your imagine job (running) was interrupted when the bot shut"
        )
        assert waiting.startswith(f"<@{admin}> ⚠️ Your imagine job (waiting in the queue) was interrupted")
        assert all("Nothing was charged" in text for text in (running, waiting))
        db = await Database.open(db_url)
        try:
            quotas = QuotaStore(db)
            rows = await quotas.audit(guild)
            assert [r.status for r in rows] == ["refunded", "refunded"]
            assert all("shutdown" in (r.outcome or "") for r in rows)
            async with db.connect() as conn:
                assert (await conn.execute(instances.select())).all() == []  # retired: nothing waits
        finally:
            await db.close()
        gemini.delay = 0.0
        async with running_bot(fake, tmp_path, entry):
            inter = await fake.send_slash("imagine", {"prompt": "a quick cathedral"})
            assert fake.files_of(await inter.wait_done())
            await asyncio.sleep(0.2)
        assert len(notices(fake)) == 2  # settled once, never told twice


async def test_shutdown_lets_a_result_being_uploaded_arrive(tmp_path: Path) -> None:
    """The job is done but Discord made its upload wait (a 429 with Retry-After): a shutdown now
    waits for the upload, charges it once, and tells nobody their job was interrupted."""
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as gemini:
        guild = int(fake.guild_id)
        entry = {"name": "google", "kind": "gemini", "base_url": gemini.base_url, "api_key": KEY}
        async with running_bot(fake, tmp_path, entry, shutdown_grace=10.0) as bot:
            fake.fail_next("PATCH", r"/webhooks/.*/messages/@original", 429, via=True, retry_after=1.5)
            inter = await fake.send_slash("imagine", {"prompt": "a patient lighthouse"})
            await eventually(
                lambda: any(r.status == 429 and r.files for r in fake.requests), what="the refused upload"
            )
            db_url = bot.settings.effective_database_url
        # Closed only now: the retried upload went through first.
        assert fake.files_of(await inter.wait_done(timeout=1))
        assert notices(fake) == []
        db = await Database.open(db_url)
        try:
            [row] = await QuotaStore(db).audit(guild)
            assert row.status == "committed"
        finally:
            await db.close()


async def test_the_shutdown_notice_is_in_the_servers_language(tmp_path: Path) -> None:
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as gemini:
        alice = fake.users["alice"]["id"]
        entry = {"name": "google", "kind": "gemini", "base_url": gemini.base_url, "api_key": KEY}
        fake.set_preferred_locale("es-ES")
        async with running_bot(fake, tmp_path, entry, shutdown_grace=0.5):
            gemini.delay = 30.0
            await fake.send_slash("imagine", {"prompt": "una catedral muy lenta"})
            await eventually(lambda: len(gemini.requests) == 1, what="the provider call")
        texts = [m.get("content") or "" for m in fake.messages[fake.channel_id]]
        [notice] = [text for text in texts if "interrump" in text]
        assert notice == (
            f"<@{alice}> ⚠️ Tu trabajo de imaginar (en curso) se interrumpió porque el bot se apagó. "
            "No se cobró nada; vuelve a ejecutarlo."
        )
