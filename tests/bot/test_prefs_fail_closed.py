"""A member who chose private results never gets a public one, even when their preferences cannot be
read in time: the answer is private whenever the preference is not known within half a second."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.bot.test_prefs import EPHEMERAL, public_bot_messages
from tests.botenv import OutageWorld, outage_world, wait_result

KEY = "prefs-closed-key"


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[OutageWorld]:
    async with outage_world(OutageWorld, tmp_path, KEY, outage_budget=30.0) as found:
        yield found


async def test_private_results_stay_private_when_the_database_is_slow(world: OutageWorld) -> None:
    async with world.bot():
        await wait_result(await world.discord.send_slash("prefs set", {"private": True}))
    async with world.bot():  # a new process: nothing cached
        world.proxy.latency = 0.3  # every database round trip now takes 0.3 s: the read misses 0.5 s
        made = await wait_result(await world.discord.send_slash("imagine", {"prompt": "my diary page"}))
        assert world.discord.files_of(made)
        assert made.get("flags", 0) & EPHEMERAL
        assert not [m for m in public_bot_messages(world.discord) if world.discord.files_of(m)]
