"""/show of a result made in a private thread: only the thread's members (and the requester)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.bot.test_references import private_thread
from tests.bot.test_show import World, code_of, error_text
from tests.botenv import eventually, gemini_world, wait_result

KEY = "show-threads-key"


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with gemini_world(World, tmp_path, KEY, ("bob",)) as world:
        yield world


async def test_a_result_from_a_private_thread_is_not_shown_to_a_non_member(world: World) -> None:
    async with world.bot() as bot:
        fake = world.discord
        thread = private_thread(fake, "alice", members=("alice",))  # bob reads #general, not this thread
        await fake.gateway.dispatch("THREAD_CREATE", fake.channels[thread], guild_id=fake.guild_id)
        await eventually(lambda: bot.get_channel(int(thread)) is not None, what="the thread known")
        made = await wait_result(
            await fake.send_slash("imagine", {"prompt": "surprise party plan"}, channel_id=thread)
        )
        assert fake.files_of(made), made
        shown = await world.show(code_of(made), user="bob")
        assert not fake.files_of(shown), "bob re-posted a result from a private thread he is not in"
        assert "Not found" in error_text(shown)
