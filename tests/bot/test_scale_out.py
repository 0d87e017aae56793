"""Scale-out: two real bot processes, each running its own shards, one fake Discord, one PostgreSQL.

The guild lives on one process's shards and DMs on the other's (Discord sends DMs to shard 0), so
both serve users at once. They share the operator's daily budget, conversations move from one
process to another when the guild's shards are handed over (a rolling restart onto a machine
with an empty data directory), and one process starting never refunds the other's running job.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bot.storage.db import Database
from bot.storage.tables import quota_reservations, turns
from tests.botenv import HANG, eventually, wait_result
from tests.fakes.discord import FakeDiscord, InteractionHandle
from tests.fakes.providers import FakeGemini
from tests.pg import temp_pg_database

KEY = "scale-out-gemini-key"
SHARD_COUNT = 4
DM_SHARDS, GUILD_SHARDS = [0, 1], [2, 3]
ROOT = Path(__file__).resolve().parents[2]
#: Credits: 1 per 1K image on Gemini 2.5 Flash Image, 1.1 for a refine replaying one turn.
BUDGET = 7.1
EVENT = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+: ")


def fake_with_guild_on(shards: list[int]) -> FakeDiscord:
    """A fake Discord whose guild is owned by one of these shards (its id decides: id >> 22 % N)."""
    while True:
        fake = FakeDiscord(shard_count=SHARD_COUNT)
        if (int(fake.guild_id) >> 22) % SHARD_COUNT in shards:
            return fake
        time.sleep(0.002)  # the next snowflake gets another timestamp


@dataclass
class BotProcess:
    """`python -m bot` as an operator runs it, with its log file."""

    name: str
    proc: asyncio.subprocess.Process
    log: Path

    def text(self) -> str:
        """Everything the process logged so far."""
        return self.log.read_text(errors="replace")

    async def stop(self) -> int:
        """SIGTERM, as `docker stop` sends; the exit status."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), 40)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise AssertionError(f"{self.name} ignored SIGTERM:\n{self.text()[-3000:]}") from None


@dataclass
class Cluster:
    """The fakes and the database every process shares."""

    discord: FakeDiscord
    gemini: FakeGemini
    db_url: str
    tmp: Path

    async def start(self, name: str, shard_ids: list[int]) -> BotProcess:
        """A bot process running these shards, with its own (empty) data directory."""
        data_dir = self.tmp / name
        data_dir.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "GEMINI_", "NANOBOT"))}
        env.update(
            PYTHONPATH=str(ROOT),
            DISCORD_TOKEN=self.discord.token,
            DISCORD_API_BASE=self.discord.api_base,
            DISCORD_GATEWAY_URL=self.discord.gateway_url,
            GEMINI_API_KEY=KEY,
            GEMINI_BASE_URL=self.gemini.base_url,
            DATABASE_URL=self.db_url,
            DATA_DIR=str(data_dir),
            SHARD_COUNT=str(SHARD_COUNT),
            SHARD_IDS=str(shard_ids),
            OPERATOR_DAILY_BUDGET=str(BUDGET),
            ALLOW_DMS="true",  # DMs are off unless the operator allows them
            DM_CREDITS="100",  # here the operator's budget is what runs out
            MAX_CONCURRENT_JOBS="4",
            PROGRESS_INTERVAL="60",
            RETRY_BASE_DELAY="0.01",
            LOG_LEVEL="INFO",
        )
        log = data_dir / "bot.log"
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "run", cwd=data_dir, env=env, stdout=out, stderr=out
            )
        return BotProcess(name, proc, log)

    async def ready(self, connections: int, *procs: BotProcess) -> None:
        """Wait until that many shards are connected (failing early if a process died)."""
        deadline = time.monotonic() + 60
        while len(self.discord.gateway.ready_connections) != connections:
            for p in procs:
                assert p.proc.returncode is None, f"{p.name} exited:\n{p.text()[-3000:]}"
            assert time.monotonic() < deadline, f"{connections} shards never became ready"
            await asyncio.sleep(0.05)

    async def send(self, user: str, prompt: str, *, dm: bool = False) -> InteractionHandle:
        """A /imagine in the guild or in the user's DMs."""
        channel = self.discord.dm_channel(user) if dm else None
        return await self.discord.send_slash("imagine", {"prompt": prompt}, user=user, channel_id=channel)

    async def imagine(self, user: str, prompt: str, *, dm: bool = False) -> dict[str, Any]:
        """A /imagine in the guild or in the user's DMs; the message the user finally sees."""
        return await wait_result(await self.send(user, prompt, dm=dm))

    async def reply(self, to: dict[str, Any], text: str, user: str) -> dict[str, Any]:
        """A user replies to a bot image; the bot's answer to that reply."""
        sent = await self.discord.user_message(text, reply_to=to, user=user)
        return await self.discord.wait_for_message(
            lambda m: (
                (m.get("message_reference") or {}).get("message_id") == sent["id"]
                and m["author"]["id"] == self.discord.app_id
            ),
            timeout=40,
        )


@contextlib.asynccontextmanager
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    """One PostgreSQL database, a sharded fake Discord and a fake Gemini."""
    async with temp_pg_database() as url:
        fake = fake_with_guild_on(GUILD_SHARDS)
        async with fake, FakeGemini(api_key=KEY) as gemini:
            for name in ("bob", "carol", "dave", "erin", "frank", "grace", "heidi"):
                fake.add_user(name)
            yield Cluster(fake, gemini, url, tmp_path)
            assert fake.violations == []


def image_of(fake: FakeDiscord, message: dict[str, Any]) -> bytes | None:
    """The image a message carries, if any."""
    files = fake.files_of(message)
    return files[0][1] if files else None


def title(message: dict[str, Any]) -> str:
    """The title of a message's first embed."""
    return str((message.get("embeds") or [{}])[0].get("title") or "")


async def ledger(db_url: str) -> dict[str, tuple[int, int]]:
    """Reservations by status: (count, credits in cents)."""
    db = await Database.open(db_url, migrate=False)
    try:
        t = quota_reservations
        query = select(t.c.status, func.count(), func.sum(t.c.cost_cents)).group_by(t.c.status)
        async with db.connect() as conn:
            return {row[0]: (int(row[1]), int(row[2] or 0)) for row in await conn.execute(query)}
    finally:
        await db.close()


async def settled_ledger(db_url: str) -> dict[str, tuple[int, int]]:
    """The ledger once no reservation is held (a charge is committed just after the user sees it)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + HANG
    while "reserved" in (found := await ledger(db_url)):
        if loop.time() > deadline:
            break  # the caller's assertion shows what is still held
        await asyncio.sleep(0.1)
    return found


async def turn_count(db_url: str) -> int:
    """Conversation turns stored, by every process together."""
    db = await Database.open(db_url, migrate=False)
    try:
        async with db.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(turns))).scalar_one())
    finally:
        await db.close()


async def test_two_processes_share_quotas_and_conversations(tmp_path: Path) -> None:
    async with cluster(tmp_path) as c:
        dms = await c.start("dms", DM_SHARDS)
        guild = await c.start("guild", GUILD_SHARDS)
        procs = [dms, guild]
        try:
            await c.ready(SHARD_COUNT, dms, guild)
            # Both serve at once: the guild on one process, DMs on the other.
            first, in_dm = await asyncio.gather(
                c.imagine("alice", "a lighthouse"), c.imagine("bob", "a fox", dm=True)
            )
            assert image_of(c.discord, first) and image_of(c.discord, in_dm)
            assert "guild=-" in dms.text() and f"guild={c.discord.guild_id}" in guild.text()

            # Rolling restart: the guild's shards move to a new process on another machine while
            # the DM process is busy with a slow job; the newcomer must not take it for an orphan.
            owl_call = c.gemini.hold_next()  # the owl's job runs until the conversation has moved
            slow = await c.send("carol", "a slow owl", dm=True)
            await eventually(lambda: c.gemini.calls == 3, what="the slow job's request")
            assert await guild.stop() == 0
            await c.ready(len(DM_SHARDS), dms)
            successor = await c.start("successor", GUILD_SHARDS)
            procs.append(successor)
            await c.ready(SHARD_COUNT, dms, successor)

            # The conversation continues there: the real Gemini history, with the first image
            # fetched back from Discord (this machine's blob store is empty).
            refined = await c.reply(first, "make it stormy", user="alice")
            assert image_of(c.discord, refined) == c.gemini.outputs[-1]
            contents = c.gemini.requests[-1].json["contents"]
            assert [turn["role"] for turn in contents] == ["user", "model", "user"]
            assert contents[0] == {"role": "user", "parts": [{"text": "a lighthouse"}]}
            [model_part] = [part for part in contents[1]["parts"] if "inlineData" in part]
            assert base64.b64decode(model_part["inlineData"]["data"]) == image_of(c.discord, first)

            owl_call.set()
            owl = await wait_result(slow)
            assert image_of(c.discord, owl), title(owl)  # delivered and charged, not refunded
            notices = [
                m for m in c.discord.messages[owl["channel_id"]] if "interrupted" in str(m.get("content"))
            ]
            assert notices == []

            # One budget for both: 7.1 credits, 4.1 spent; six jobs at once, three fit.
            users = [("dave", False), ("erin", False), ("frank", False), ("grace", True), ("heidi", True)]
            users.append(("bob", True))
            answers = await asyncio.gather(*(c.imagine(u, f"a bird for {u}", dm=dm) for u, dm in users))
            made = [a for a in answers if image_of(c.discord, a)]
            refused = [a for a in answers if not image_of(c.discord, a)]
            assert len(made) == 3 and len(refused) == 3
            assert all("Quota reached" in title(a) for a in refused)
            assert all("the bot's daily budget" in str(a["embeds"][0]["description"]) for a in refused)
            assert await settled_ledger(c.db_url) == {"committed": (7, 710)}
            assert await turn_count(c.db_url) == 7
        finally:
            codes = [await p.stop() for p in procs]
        assert codes == [0, 0, 0]
        for p in procs:
            assert "Traceback" not in p.text(), p.text()[-3000:]
            lines = p.text().splitlines()  # one event per line, each with its time and level
            assert lines and all(EVENT.match(line) for line in lines), lines[:5]
