"""The database briefly unreachable: PostgreSQL behind a TCP relay that the tests cut and restore.

A blip while a job runs is waited out (the user gets the image, charged once); an outage when a
command arrives is a clear message and no charge; a refund that could not be written while the
database was down is made by the maintenance sweep once it is back. The bot keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.storage.db import Database
from bot.storage.tables import quota_reservations
from tests.botenv import HANG, OutageWorld, eventually, outage_world, wait_result

KEY = "outage-gemini-key"
OUTAGE_BUDGET = 3.0


class World(OutageWorld):
    """This file's outage world, with the helpers its tests use."""

    async def imagine(self, prompt: str) -> dict[str, Any]:
        inter = await self.discord.send_slash("imagine", {"prompt": prompt})
        return await wait_result(inter)

    async def ledger(self) -> dict[str, int]:
        """Reservations by status."""
        db = await Database.open(self.db_url, migrate=False)
        try:
            t = quota_reservations
            async with db.connect() as conn:
                rows = await conn.execute(select(t.c.status, func.count()).group_by(t.c.status))
                return {status: int(n) for status, n in rows}
        finally:
            await db.close()

    async def settles_to(self, expected: dict[str, int], timeout: float = HANG) -> None:
        """Wait until the ledger reads `expected` (a commit lands just after the user sees the image)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (ledger := await self.ledger()) != expected:
            assert loop.time() < deadline, f"the ledger is {ledger}, not {expected}"
            await asyncio.sleep(0.2)


def world(tmp_path: Path) -> contextlib.AbstractAsyncContextManager[World]:
    """The world of these tests."""
    return outage_world(World, tmp_path, KEY, OUTAGE_BUDGET)


def title(message: dict[str, Any]) -> str:
    return str((message.get("embeds") or [{}])[0].get("title") or "")


def description(message: dict[str, Any]) -> str:
    return str((message.get("embeds") or [{}])[0].get("description") or "")


def unreachable_since(caplog: pytest.LogCaptureFixture, seen: int) -> bool:
    """Whether the bot has logged an unreachable database since the first `seen` records."""
    return any("database unreachable" in r.getMessage() for r in caplog.records[seen:])


async def test_a_blip_during_a_job_is_waited_out(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bot.storage.db")
    async with world(tmp_path) as w, w.bot():
        assert w.discord.files_of(await w.imagine("a warm-up"))
        await w.settles_to({"committed": 1})  # its delivery is recorded before the database goes
        answer = w.gemini.hold_next()
        inter = await w.discord.send_slash("imagine", {"prompt": "a storm"})
        await eventually(lambda: w.gemini.calls == 2, what="the provider call")
        await w.proxy.cut()
        answer.set()  # the provider answers while the database is gone…
        await eventually(lambda: len(w.gemini.outputs) == 2, what="the provider's answer")
        seen = len(caplog.records)
        await eventually(lambda: unreachable_since(caplog, seen), what="the bot finding the database gone")
        await w.proxy.restore()  # …and it is back within the outage budget
        message = await wait_result(inter)
        assert w.discord.files_of(message), f"{title(message)}: {description(message)}"
        await w.settles_to({"committed": 2})  # charged once each, nothing left reserved


async def test_an_outage_is_a_clear_message_and_costs_nothing(tmp_path: Path) -> None:
    async with world(tmp_path) as w, w.bot():
        assert w.discord.files_of(await w.imagine("a warm-up"))
        await w.settles_to({"committed": 1})  # its delivery is recorded before the database goes
        await w.proxy.cut()
        message = await w.imagine("a lighthouse")
        assert "Database unavailable" in title(message) and "Nothing was charged" in description(message)
        assert not w.discord.files_of(message)
        await w.proxy.restore()
        assert w.discord.files_of(await w.imagine("a lighthouse, again"))
        await w.settles_to({"committed": 2})


async def test_a_refund_lost_to_an_outage_is_made_when_the_database_is_back(tmp_path: Path) -> None:
    async with world(tmp_path) as w, w.bot():
        answer = w.gemini.hold_next()
        inter = await w.discord.send_slash("imagine", {"prompt": "a storm"})
        await eventually(lambda: w.gemini.calls == 1, what="the provider call")
        await w.proxy.cut()  # down for longer than the bot waits: the job fails, its refund too
        answer.set()
        message = await wait_result(inter)
        assert "Database unavailable" in title(message) and "Nothing was charged" in description(message)
        assert await w.ledger() == {"reserved": 1}  # what the outage left behind…
        await w.proxy.restore()
        await w.settles_to({"refunded": 1})  # …refunded by the sweep, not held forever
        assert w.discord.files_of(await w.imagine("a calm sea"))
        await w.settles_to({"refunded": 1, "committed": 1})
