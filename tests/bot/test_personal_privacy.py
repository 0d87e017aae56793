"""Results stay where they may be seen: /style save from a result follows /show's rules, results of
age-restricted channels stay in age-restricted channels, and /forget reaches copies of a member's
words in other members' styles and the counter keys of their audit rows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bot.jobs.ids import job_code
from bot.storage.tables import quota_reservations, styles
from tests.bot.test_forget import ask_forget, click, every_value
from tests.bot.test_show import World, code_of, error_text
from tests.botenv import GeminiWorld, embed_fields, gemini_world, linked_turn, text, wait_result

KEY = "personal-privacy-key"


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with gemini_world(World, tmp_path, KEY, ("bob",)) as world:
        yield world


async def save_style(world: GeminiWorld, options: dict[str, Any], user: str) -> dict[str, Any]:
    return await wait_result(await world.discord.send_slash("style save", options, user=user))


async def test_bob_cannot_save_a_style_from_alices_private_result(world: World) -> None:
    async with world.bot() as bot:
        await wait_result(await world.discord.send_slash("prefs set", {"private": True}))
        made = await world.imagine("my secret plan")
        turn = await linked_turn(bot, made)
        assert turn.options.get("private") is True
        refused = await world.show(code_of(made), user="bob")  # /show keeps it to alice...
        assert "Not found" in error_text(refused)
        # ...but bob only has to count ids (they are sequential) and save it as a style:
        saved = await save_style(world, {"name": "loot", "job": job_code(turn.id)}, user="bob")
        async with bot.services.db.connect() as conn:
            stolen = list(await conn.execute(sa.select(styles)))
        assert not stolen, f"bob saved alice's private result as a style; he was shown: {text(saved)}"


async def test_bob_cannot_save_a_style_from_a_result_in_a_channel_hidden_from_him(world: World) -> None:
    async with world.bot() as bot:
        fake = world.discord
        staff = await world.hidden_channel(bot, "staff")
        made = await wait_result(
            await fake.send_slash("imagine", {"prompt": "layoff plan"}, channel_id=staff)
        )
        assert "Not found" in error_text(await world.show(code_of(made), user="bob"))
        saved = await save_style(world, {"name": "loot", "job": code_of(made)}, user="bob")
        shown = embed_fields(saved).get("Style words", "")
        assert "layoff plan" not in shown, f"the hidden channel's prompt was shown to bob: {shown}"


async def test_show_policy_requester_also_covers_style_save(world: World) -> None:
    async with world.bot(show_policy="requester"):
        made = await world.imagine("alice only")
        assert "Not found" in error_text(await world.show(code_of(made), user="bob"))
        saved = await save_style(world, {"name": "loot", "job": code_of(made)}, user="bob")
        shown = embed_fields(saved).get("Style words", "")
        assert "alice only" not in shown, f"SHOW_POLICY=requester bypassed: bob was shown {shown}"


async def test_a_result_from_an_age_restricted_channel_is_not_reposted_in_a_sfw_channel(world: World) -> None:
    async with world.bot():
        fake = world.discord
        await wait_result(await fake.send_slash("settings set", {"safety": "relaxed"}, user="admin"))
        made = await wait_result(
            await fake.send_slash("imagine", {"prompt": "gore scene"}, channel_id=fake.nsfw_channel_id)
        )
        assert fake.files_of(made)
        shown = await world.show(code_of(made))  # in "general", not age-restricted
        assert not fake.files_of(shown), "an age-restricted result was re-posted in a SFW channel"


async def test_forget_leaves_alices_prompt_and_image_in_bobs_style(world: World) -> None:
    async with world.bot() as bot:
        made = await world.imagine("alice's very own words")
        turn = await linked_turn(bot, made)
        saved = await save_style(world, {"name": "copy", "job": code_of(made)}, user="bob")
        assert "Saved" in text(saved)
        done = await click(world, await ask_forget(world), "Delete my data")
        assert done["content"].startswith("✅")
        leftover = [v for v in await every_value(bot) if "alice's very own words" in v]
        from bot.storage.blobs import blob_path

        files = [blob_path(bot.services.blobs.root, r.sha256) for r in turn.output_images]
        assert not leftover and not any(p.exists() for p in files), (leftover, files)


async def test_forget_leaves_the_user_id_in_audit_rows(world: World) -> None:
    async with world.bot() as bot:
        await world.imagine("x")
        alice = world.discord.users["alice"]["id"]
        done = await click(world, await ask_forget(world), "Delete my data")
        assert "usage record" in done["content"]
        async with bot.services.db.connect() as conn:
            rows = list(await conn.execute(sa.select(quota_reservations)))
        assert rows and all(r.user_id == 0 for r in rows)
        assert not [r.counters for r in rows if alice in str(r.counters)], "user id kept in counters"


async def test_forget_asks_and_answers_in_the_members_language(world: World) -> None:
    async with world.bot():
        await world.imagine("una casa")
        asked = await (await world.discord.send_slash("forget", {}, locale="es-ES")).wait_done()
        assert asked["content"].startswith("🗑️ **¿Borro todo lo que guardé sobre ti")
        labels = [c.get("label") for row in asked["components"] for c in row["components"]]
        assert labels == ["Borrar mis datos", "Cancelar"]
        done = await click(world, asked, "Borrar mis datos")
        assert done["content"] == (
            "✅ Se eliminaron 1 resultado, 1 imagen y 0 estilos. "
            "1 registro de uso conserva ahora solo su costo."
        )
