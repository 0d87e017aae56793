"""Upstream faults through the fake Discord: a clear message, a refund, and the next command still works."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.app import NanoBot
from tests.botenv import running_bot, settled_usage
from tests.fakes.discord import FakeDiscord
from tests.fakes.providers import FakeGemini, FakeOpenAIImages, FakeTask, Fault

KEY = "upstream-key"
#: The provider's request timeout: far above a local answer on a busy machine, below a hang.
TIMEOUT = 5.0


@dataclass
class Env:
    discord: FakeDiscord
    bot: NanoBot

    async def usage(self) -> tuple[int, int]:
        return await settled_usage(self.discord, self.bot)

    async def imagine(self) -> dict[str, Any]:
        inter = await self.discord.send_slash("imagine", {"prompt": "a lamp"})
        return await inter.wait_done(timeout=60)


@pytest.fixture
async def gemini_env(tmp_path: Path) -> AsyncIterator[tuple[Env, FakeGemini]]:
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as gemini:
        entry = {
            "name": "google",
            "kind": "gemini",
            "base_url": gemini.base_url,
            "api_key": KEY,
            "timeout": TIMEOUT,
        }
        async with running_bot(fake, tmp_path, entry) as bot:
            yield Env(fake, bot), gemini
        assert fake.violations == []


@pytest.mark.parametrize(
    ("faults", "title"),
    [
        ([Fault("rate_limited", retry_after=0.01)] * 3, "Rate limited"),
        (["server_error"] * 3, "Provider unavailable"),
        (["bad_gateway"] * 3, "Provider unavailable"),
        (["unavailable"] * 3, "Provider unavailable"),
        (["gateway_timeout"] * 3, "Timed out"),
        ([Fault("hang")], "Timed out"),  # hangs far past TIMEOUT
        (["malformed"], "Provider unavailable"),
        (["html"], "Provider unavailable"),
        (["truncated_base64"], "Provider unavailable"),
    ],
)
async def test_gemini_faults(gemini_env: tuple[Env, FakeGemini], faults: list[Any], title: str) -> None:
    env, gemini = gemini_env
    gemini.script(*faults)
    message = await env.imagine()
    assert title in message["embeds"][0]["title"] and message["flags"] & 64
    assert await env.usage() == (0, 0)  # refunded
    assert env.discord.files_of(await env.imagine())  # and the bot keeps serving
    assert await env.usage() == (100, 0)


async def test_result_url_that_404s(tmp_path: Path) -> None:
    async with FakeDiscord() as fake, FakeOpenAIImages(api_key="k") as relay:
        entry = {"name": "relay", "kind": "openai-images", "base_url": relay.base_url, "api_key": "k"}
        async with running_bot(fake, tmp_path, entry) as bot:
            env = Env(fake, bot)
            relay.script("url_404")
            message = await env.imagine()
            assert "download failed (HTTP 404)" in message["embeds"][0]["description"]
            assert await env.usage() == (0, 0)
            assert fake.files_of(await env.imagine())


async def test_task_that_never_completes(tmp_path: Path) -> None:
    async with FakeDiscord() as fake, FakeTask(api_key="k") as task:
        entry = {"name": "vtrix", "kind": "task", "base_url": task.base_url, "api_key": "k"}
        async with running_bot(fake, tmp_path, entry, task_deadline=2.0) as bot:  # ample for 3 polls
            env = Env(fake, bot)
            task.script("never_completes")
            message = await env.imagine()
            assert "did not finish" in message["embeds"][0]["description"]
            assert await env.usage() == (0, 0)
            assert fake.files_of(await env.imagine())


@pytest.mark.parametrize(("status", "via"), [(429, True), (500, False), (502, False)])
async def test_discord_failing_the_upload_once(
    gemini_env: tuple[Env, FakeGemini], status: int, via: bool
) -> None:
    env, _ = gemini_env
    env.discord.fail_next("PATCH", r"/webhooks/.*/messages/@original", status, via=via, retry_after=0.1)
    message = await env.imagine()
    assert env.discord.files_of(message)  # discord.py retried the upload
    assert await env.usage() == (100, 0)  # charged once


@pytest.mark.parametrize(
    ("status", "via", "tries", "needle"),
    [
        (503, False, 5, "could not take your image right now (HTTP 503)"),  # 5 tries over ~16 s
        (429, True, 5, "rate limiting this bot"),  # retried after retry_after, 5 tries in all
        (429, False, 1, "rate limiting this bot"),  # no Via header: discord.py gives up at once
    ],
)
async def test_discord_refusing_the_upload_refunds(
    gemini_env: tuple[Env, FakeGemini], status: int, via: bool, tries: int, needle: str
) -> None:
    env, gemini = gemini_env
    route = r"/webhooks/.*/messages/@original"
    env.discord.fail_next("PATCH", route, status, count=tries, via=via, retry_after=0.05)  # every try
    message = await env.imagine()
    [embed] = message["embeds"]
    assert "Discord refused the image" in embed["title"] and message["flags"] & 64
    assert needle in embed["description"] and "Nothing was charged" in embed["description"]
    assert not env.discord.files_of(message) and gemini.calls == 1
    uploads = [r for r in env.discord.requests if r.method == "PATCH" and r.files]
    assert [r.status for r in uploads] == [status] * tries  # every try was refused
    assert await env.usage() == (0, 0)
    assert env.discord.files_of(await env.imagine())
    assert await env.usage() == (100, 0)


async def test_database_briefly_locked(gemini_env: tuple[Env, FakeGemini], tmp_path: Path) -> None:
    env, _ = gemini_env
    locker = sqlite3.connect(tmp_path / "nanobot.db", timeout=30)
    locker.execute("BEGIN IMMEDIATE")
    inter = await env.discord.send_slash("imagine", {"prompt": "a lamp"})
    await inter.wait_ack()
    await asyncio.sleep(1.0)
    locker.rollback()
    locker.close()
    assert env.discord.files_of(await inter.wait_done(timeout=30))
    assert await env.usage() == (100, 0)


async def test_database_locked_for_too_long(tmp_path: Path) -> None:
    """Another process holds SQLite's write lock past DATABASE_OUTAGE_SECONDS: the user is told
    the database is unavailable, nothing is charged, and once the lock goes the bot serves again."""
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as gemini:
        entry = {"name": "google", "kind": "gemini", "base_url": gemini.base_url, "api_key": KEY}
        async with running_bot(fake, tmp_path, entry, database_outage_seconds=1.0) as bot:
            env = Env(fake, bot)
            locker = sqlite3.connect(tmp_path / "nanobot.db", timeout=30)
            locker.execute("BEGIN IMMEDIATE")  # the write lock, held for longer than the bot waits
            try:
                message = await env.imagine()
            finally:
                locker.rollback()
                locker.close()
            [embed] = message["embeds"]
            assert "Database unavailable" in embed["title"] and message["flags"] & 64
            assert "Nothing was charged" in embed["description"] and not fake.files_of(message)
            assert gemini.calls == 0  # refused before the provider was paid for anything
            assert await env.usage() == (0, 0)
            assert fake.files_of(await env.imagine())
            assert await env.usage() == (100, 0)
        assert fake.violations == []
