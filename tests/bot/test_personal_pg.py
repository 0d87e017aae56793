"""The private filter, /history and /forget on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.bot.test_forget import ask_forget, click, every_value
from tests.bot.test_show import World, code_of, error_text
from tests.botenv import gemini_world, linked_turn, wait_result
from tests.pg import temp_pg_database

KEY = "personal-pg-key"


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with gemini_world(World, tmp_path, KEY, ("bob",)) as world:
        yield world


async def test_private_results_history_and_forget_on_postgresql(world: World) -> None:
    async with temp_pg_database() as url, world.bot(database_url=url) as bot:
        await wait_result(await world.discord.send_slash("prefs set", {"private": True}))
        secret = await world.imagine("my secret")
        await wait_result(await world.discord.send_slash("prefs set", {"private": False}))
        public = await world.imagine("my public one")
        assert (await linked_turn(bot, secret)).options["private"] is True
        assert "Not found" in error_text(await world.show(code_of(secret), user="bob"))
        assert world.discord.files_of(await world.show(code_of(public), user="bob"))
        alice = world.discord.users["alice"]["id"]
        page = await (await world.discord.send_slash("history", {"member": alice}, user="admin")).wait_done()
        page = world.discord._current(page)
        assert "1 result" in page["content"], page["content"]
        own = world.discord._current(await (await world.discord.send_slash("history", {})).wait_done())
        assert "2 results" in own["content"], own["content"]
        done = await click(world, await ask_forget(world), "Delete my data")
        assert done["content"].startswith("✅ Removed 2 results"), done["content"]
        assert not [v for v in await every_value(bot) if "my secret" in v or "my public one" in v]
