"""/forget through the fake Discord: after the member confirms, no database row holds their prompts
and no image file of theirs is left, while another member's results and the conversation they
continued from the forgotten member's result keep working."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bot.app import NanoBot
from bot.storage.blobs import blob_path
from bot.storage.tables import metadata, quota_reservations, turns, utcnow
from bot.storage.turns import TurnRecord
from tests.botenv import (
    GeminiWorld,
    button_id,
    eventually,
    eventually_async,
    gemini_world,
    linked_turn,
    wait_result,
)

KEY = "forget-key"
EPHEMERAL = 64
ALICE_PROMPTS = ("a secret harbour at dawn", "a hidden cove at dusk")
BOB_PROMPT = "a windmill in the rain"
BOB_EDIT = "add a red kite"


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[GeminiWorld]:
    async with gemini_world(GeminiWorld, tmp_path, KEY, ("bob",)) as world:
        yield world


async def imagine(world: GeminiWorld, prompt: str, user: str = "alice") -> dict[str, Any]:
    return await wait_result(await world.discord.send_slash("imagine", {"prompt": prompt}, user=user))


async def edit_by_button(world: GeminiWorld, message: dict[str, Any], text: str, user: str) -> dict[str, Any]:
    """Continue a result with its ✏️ button, as `user`."""
    fake = world.discord
    opened = await fake.send_component(message, button_id(message, "edit"), user=user)
    await opened.wait_ack()
    assert opened.modal is not None, "no modal opened"
    field = opened.modal["components"][0]["components"][0]["custom_id"]
    return await wait_result(
        await fake.send_modal_submit(opened.modal["custom_id"], {field: text}, user=user)
    )


async def ask_forget(world: GeminiWorld, user: str = "alice") -> dict[str, Any]:
    """/forget: the private confirmation with its two buttons."""
    asked = await world.discord.send_slash("forget", {}, user=user)
    message = await asked.wait_done()
    assert int(message.get("flags") or 0) & EPHEMERAL
    return message


def button(message: dict[str, Any], label: str) -> str:
    [found] = [
        c["custom_id"] for row in message["components"] for c in row["components"] if c.get("label") == label
    ]
    return found


async def click(
    world: GeminiWorld, message: dict[str, Any], label: str, user: str = "alice"
) -> dict[str, Any]:
    """Click a confirmation button; the message as the member then sees it (once final)."""
    clicked = await world.discord.send_component(message, button(message, label), user=user)
    await clicked.wait_done()
    await eventually(lambda: not (clicked.original or {}).get("content", "").endswith("…"), what="the answer")
    assert clicked.original is not None
    return clicked.original


async def every_value(bot: NanoBot) -> list[str]:
    """Every value of every row of every table, as text (JSON columns included)."""
    assert bot.db is not None
    found: list[str] = []
    async with bot.db.connect() as conn:
        for table in metadata.sorted_tables:
            for row in await conn.execute(sa.select(table)):
                found += [str(value) for value in row]
    return found


def files_of(bot: NanoBot, *turns: TurnRecord) -> list[Path]:
    refs = [ref for turn in turns for ref in (*turn.input_images, *turn.output_images)]
    return [blob_path(bot.service.blobs.root, ref.sha256) for ref in refs]


async def test_forget_deletes_the_members_data_and_keeps_everyone_elses(world: GeminiWorld) -> None:
    async with world.bot() as bot:
        alice_results = [await imagine(world, prompt) for prompt in ALICE_PROMPTS]
        alice_turns = [await linked_turn(bot, m) for m in alice_results]
        bob_own = await imagine(world, BOB_PROMPT, user="bob")
        bob_continued = await edit_by_button(world, alice_results[0], BOB_EDIT, user="bob")
        bob_turns = [await linked_turn(bot, m) for m in (bob_own, bob_continued)]
        assert bob_turns[1].parent_id == alice_turns[0].id

        asked = await ask_forget(world)
        refused = await click(world, asked, "Delete my data", user="bob")
        assert "not yours" in refused["content"]
        done = await click(world, asked, "Delete my data")
        assert done["content"].startswith("✅ Removed 2 results, ")
        assert "0 styles" in done["content"] and not done["components"]

        values = await every_value(bot)
        for prompt in ALICE_PROMPTS:
            assert not [v for v in values if prompt in v], prompt
        assert BOB_PROMPT in values and BOB_EDIT in values
        alice_files = set(files_of(bot, *alice_turns)) - set(files_of(bot, *bob_turns))
        assert alice_files and not [p for p in alice_files if p.exists()]
        assert all(p.is_file() for p in files_of(bot, *bob_turns))
        for turn in alice_turns:
            assert await bot.service.turns.get(turn.id) is None
        kept = await bot.service.turns.get(bob_turns[1].id)
        assert kept is not None and kept.parent_id is None and kept.status == "done"

        rerolled = await wait_result(
            await world.discord.send_component(bob_continued, button_id(bob_continued, "reroll"), user="bob")
        )
        assert world.discord.files_of(rerolled), "bob's continued conversation no longer works"
        assert world.discord.files_of(await imagine(world, "a new start"))  # alice may start afresh


async def test_cancel_deletes_nothing(world: GeminiWorld) -> None:
    async with world.bot() as bot:
        turn = await linked_turn(bot, await imagine(world, ALICE_PROMPTS[0]))
        cancelled = await click(world, await ask_forget(world), "Cancel")
        assert cancelled["content"].startswith("Cancelled") and not cancelled["components"]
        assert await bot.service.turns.get(turn.id) is not None
        assert all(p.is_file() for p in files_of(bot, turn))


async def test_the_maintenance_round_prunes_turns_past_prompt_retention(world: GeminiWorld) -> None:
    async with world.bot() as bot:
        old = await linked_turn(bot, await imagine(world, ALICE_PROMPTS[0]))
        assert bot.db is not None
        async with bot.db.begin() as conn:
            aged = utcnow() - timedelta(days=40)
            await conn.execute(sa.update(turns).where(turns.c.id == old.id).values(created_at=aged))
            await conn.execute(sa.update(quota_reservations).values(created_at=aged))
    async with world.bot(prompt_retention_days=30) as bot:
        turn_store = bot.service.turns

        async def pruned() -> bool:
            return await turn_store.get(old.id) is None

        await eventually_async(pruned, what="the old turn pruned")
        assert not [p for p in files_of(bot, old) if p.exists()]
        await eventually_async(
            lambda: _no_prompt_left(bot, ALICE_PROMPTS[0]), what="the old audit prompt blanked"
        )


async def _no_prompt_left(bot: NanoBot, prompt: str) -> bool:
    return not [v for v in await every_value(bot) if prompt in v]
