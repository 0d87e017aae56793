"""Liveness and readiness through a database outage: PostgreSQL behind a TCP relay the test cuts.

/livez keeps answering 200 (the process is alive: restarting it would not bring the database back),
while /readyz and its older name /healthz answer 503 until the database is back. /metrics keeps
serving through the outage, with the operator's spent credits as last read.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import aiohttp

from bot import __version__
from bot.app import NanoBot
from tests.botenv import OutageWorld, eventually_async, outage_world, wait_result

KEY = "health-gemini-key"
OUTAGE_BUDGET = 3.0


class World(OutageWorld):
    """The outage world, with the health server listening and an operator's budget to report."""

    def bot(self, **overrides: Any) -> contextlib.AbstractAsyncContextManager[NanoBot]:
        """The bot through the relay, with HEALTH_PORT on a free port of 127.0.0.1."""
        return super().bot(health_port=0, health_host="127.0.0.1", operator_daily_budget=100, **overrides)


async def get(bot: NanoBot, path: str) -> tuple[int, Any]:
    """(status, body: parsed JSON, or the text of /metrics) of a GET on the bot's health server."""
    assert bot.health is not None
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{bot.health.port}{path}") as answer,
    ):
        text = await answer.text()
        return answer.status, text if path == "/metrics" else json.loads(text)


def sample(metrics: str, name: str) -> str | None:
    """The value of an unlabelled sample in an exposition, as written."""
    for line in metrics.splitlines():
        if line.startswith(f"{name} "):
            return line.split(" ", 1)[1]
    return None


async def test_livez_stays_up_while_readyz_follows_the_database(tmp_path: Path) -> None:
    async with outage_world(World, tmp_path, KEY, OUTAGE_BUDGET) as w, w.bot() as bot:
        inter = await w.discord.send_slash("imagine", {"prompt": "a lighthouse"})
        assert w.discord.files_of(await wait_result(inter))
        for path in ("/livez", "/readyz", "/healthz"):
            status, body = await get(bot, path)
            assert status == 200 and body["status"] == "ok" and body["version"] == __version__, path

        async def spent_read() -> bool:  # the charge is committed just after the image is posted
            return sample((await get(bot, "/metrics"))[1], "nanobot_operator_spent_credits") == "1.0"

        await eventually_async(spent_read, what="the operator's credits read from the database")

        await w.proxy.cut()
        assert await get(bot, "/livez") == (200, {"status": "ok", "version": __version__})
        for path in ("/readyz", "/healthz"):
            status, body = await get(bot, path)
            assert status == 503 and body["status"] == "unavailable", path
            assert body["database"] != "ok" and "database" in body["reason"]
            assert body["version"] == __version__ and body["shards_ready"] == 1
        status, metrics = await get(bot, "/metrics")
        assert status == 200
        assert sample(metrics, "nanobot_ready") == "0.0"
        assert sample(metrics, "nanobot_operator_spent_credits") == "1.0"  # the last value read

        await w.proxy.restore()

        async def ready() -> bool:
            statuses = [(await get(bot, path))[0] for path in ("/readyz", "/healthz")]
            return statuses == [200, 200]

        await eventually_async(ready, what="readiness once the database is back")
        assert (await get(bot, "/livez"))[0] == 200
        assert sample((await get(bot, "/metrics"))[1], "nanobot_ready") == "1.0"
