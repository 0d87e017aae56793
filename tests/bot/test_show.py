"""/show through the fake Discord: every result names its job id, and /show posts it again (images,
embed, working buttons) in another channel or a DM; other members of its server may show it unless
SHOW_POLICY=requester; a deleted or unknown result gets one "not found" that gives nothing away."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import NanoBot
from bot.jobs.ids import job_code
from bot.storage.blobs import blob_path
from tests.bot.channels import hidden_channel, new_channel
from tests.botenv import (
    GeminiWorld,
    button_id,
    embed_fields,
    eventually,
    gemini_world,
    linked_turn,
    text,
    title,
    wait_result,
)

KEY = "show-key"
NOT_FOUND = "There is no result with that id that you can show here."


class World(GeminiWorld):
    """This file's world: the shared fakes plus the helpers its tests use."""

    async def imagine(self, prompt: str = "a lighthouse at dusk", user: str = "alice") -> dict[str, Any]:
        return await wait_result(await self.discord.send_slash("imagine", {"prompt": prompt}, user=user))

    async def show(
        self, code: str, *, user: str = "alice", channel_id: str | None = None, locale: str = "en-US"
    ) -> dict[str, Any]:
        inter = await self.discord.send_slash(
            "show", {"id": code}, user=user, channel_id=channel_id, locale=locale
        )
        return await wait_result(inter)

    async def channel(self, bot: NanoBot, name: str) -> str:
        """A new text channel of the server (the bot learns of it before this returns)."""
        return await new_channel(self.discord, bot, name)

    async def hidden_channel(self, bot: NanoBot, name: str, seen_by: str = "alice") -> str:
        """A new text channel only `seen_by` may see (the bot learns of it before this returns)."""
        return await hidden_channel(self.discord, bot, name, seen_by)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with gemini_world(World, tmp_path, KEY, ("bob",)) as world:
        yield world


def code_of(result: dict[str, Any]) -> str:
    """The job id a result's embed shows."""
    return embed_fields(result)["Job"].strip("`")


def error_text(message: dict[str, Any]) -> str:
    [embed] = message["embeds"]
    return f"{embed.get('title')}: {embed.get('description')}"


async def reroll(world: World, message: dict[str, Any], user: str = "alice") -> dict[str, Any]:
    """Click 🔁 on a message and wait for the new result."""
    return await wait_result(
        await world.discord.send_component(message, button_id(message, "reroll"), user=user)
    )


async def test_a_result_shown_in_another_channel_has_its_images_embed_and_a_working_reroll(
    world: World,
) -> None:
    async with world.bot() as bot:
        made = await world.imagine()
        turn = await linked_turn(bot, made)
        assert code_of(made) == job_code(turn.id)
        elsewhere = await world.channel(bot, "gallery")

        shown = await world.show(code_of(made).lower(), channel_id=elsewhere)  # any case
        assert shown["channel_id"] == elsewhere
        assert title(shown) == f"🔎 Job {code_of(made)}"
        assert code_of(shown) == code_of(made)
        assert "a lighthouse at dusk" in text(shown)
        assert [data for _, data in world.discord.files_of(shown)] == [
            d for _, d in world.discord.files_of(made)
        ]
        assert button_id(shown, "reroll") == button_id(made, "reroll")
        assert (await linked_turn(bot, shown)).id == turn.id  # replies to the copy continue it too
        assert world.gemini.calls == 1  # nothing was made again

        again = await reroll(world, shown)
        assert world.discord.files_of(again)
        assert again["channel_id"] == elsewhere
        assert world.gemini.calls == 2
        new = await linked_turn(bot, again)
        assert new.id != turn.id and new.parent_id == turn.id and new.kind == "reroll"
        assert code_of(again) == job_code(new.id)


async def test_a_result_shown_in_a_dm_has_a_working_reroll(world: World) -> None:
    async with world.bot(allow_dms=True) as bot:
        made = await world.imagine()
        dm = world.discord.dm_channel("alice")
        shown = await world.show(code_of(made), channel_id=dm)
        assert shown["channel_id"] == dm
        assert world.discord.files_of(shown)
        again = await reroll(world, shown)
        assert again["channel_id"] == dm and world.discord.files_of(again)
        assert (await linked_turn(bot, again)).parent_id == (await linked_turn(bot, made)).id
        assert world.gemini.calls == 2


async def test_show_in_dms_follows_the_dm_rule(world: World) -> None:
    async with world.bot():
        made = await world.imagine()
        dm = world.discord.dm_channel("alice")
        refused = await wait_result(
            await world.discord.send_slash("show", {"id": code_of(made)}, channel_id=dm, force=True)
        )
        assert "Not in DMs" in error_text(refused)
        assert not world.discord.files_of(refused)


async def test_another_member_of_the_server_may_show_it_unless_only_requesters_may(world: World) -> None:
    async with world.bot():
        made = await world.imagine()
        shown = await world.show(code_of(made), user="bob")
        assert world.discord.files_of(shown)
        assert embed_fields(shown)["By"] == f"<@{world.discord.users['alice']['id']}>"
    async with world.bot(show_policy="requester"):
        refused = await world.show(code_of(made), user="bob")
        assert error_text(refused) == f"🔎 Not found: {NOT_FOUND}"
        assert refused.get("flags", 0) & 64  # only bob sees it
        assert world.discord.files_of(await world.show(code_of(made)))  # alice still may


async def test_a_dm_result_is_not_shown_to_others_in_a_server(world: World) -> None:
    async with world.bot(allow_dms=True):
        dm = world.discord.dm_channel("alice")
        made = await wait_result(
            await world.discord.send_slash("imagine", {"prompt": "a secret"}, channel_id=dm)
        )
        refused = await world.show(code_of(made), user="bob")
        assert error_text(refused) == f"🔎 Not found: {NOT_FOUND}"
        assert world.discord.files_of(await world.show(code_of(made)))  # its requester brings it anywhere


async def test_deleted_unknown_and_malformed_ids_get_the_same_answer(world: World) -> None:
    async with world.bot():
        made = await world.imagine()
        kept = await world.imagine("a pier")
        clicked = await world.discord.send_component(made, button_id(made, "del"))
        await clicked.wait_ack()
        await eventually(lambda: made["id"] not in world.discord._by_id, what="the result deleted")
        answers = [
            await world.show(code_of(made)),
            await world.show(job_code(int(code_of(kept), 36) + 50)),
            await world.show("not a code"),
        ]
        assert {error_text(a) for a in answers} == {f"🔎 Not found: {NOT_FOUND}"}
        assert not any(world.discord.files_of(a) for a in answers)
        assert world.discord.files_of(await world.show(code_of(kept)))


async def test_files_gone_are_fetched_back_from_discord_then_the_result_is_no_longer_available(
    world: World,
) -> None:
    async with world.bot() as bot:
        made = await world.imagine()
        turn = await linked_turn(bot, made)
        [output] = turn.output_images
        blob_path(bot.services.blobs.root, output.sha256).unlink()
        shown = await world.show(code_of(made))
        assert [d for _, d in world.discord.files_of(shown)] == [d for _, d in world.discord.files_of(made)]
        for message in (made, shown):  # every copy on Discord, then the file fetched back, are gone
            await world.discord._delete(world.discord._current(message))
        for path in bot.services.blobs.root.rglob("*"):
            if path.is_file():
                path.unlink()
        gone = await world.show(code_of(made))
        assert "No longer available" in error_text(gone)


async def test_autocomplete_offers_the_members_newest_results_with_their_prompts(world: World) -> None:
    async with world.bot():
        made = [await world.imagine(f"picture number {n}") for n in range(3)]
        await world.imagine("bob's own", user="bob")
        ask = await world.discord.send_autocomplete("show", {"id": ""}, focused="id")
        await ask.wait_ack()
        assert ask.autocomplete_choices == [
            {"name": f"{code_of(m)} · picture number {n}", "value": code_of(m)}
            for n, m in reversed(list(enumerate(made)))
        ]
        typed = await world.discord.send_autocomplete("show", {"id": "number 1"}, focused="id")
        await typed.wait_ack()
        assert [c["value"] for c in typed.autocomplete_choices or []] == [code_of(made[1])]


async def test_a_result_from_a_channel_hidden_from_a_member_is_not_found_for_them(world: World) -> None:
    async with world.bot() as bot:
        fake = world.discord
        staff = await world.hidden_channel(bot, "staff")
        made = await wait_result(await fake.send_slash("imagine", {"prompt": "a plan"}, channel_id=staff))
        refused = await world.show(code_of(made), user="bob")
        assert error_text(refused) == f"🔎 Not found: {NOT_FOUND}"
        assert world.discord.files_of(await world.show(code_of(made)))  # its requester may, here too


async def test_a_private_result_is_shown_by_its_requester_only(world: World) -> None:
    async with world.bot() as bot:
        await wait_result(await world.discord.send_slash("prefs set", {"private": True}))
        made = await world.imagine("my secret")  # answered with ephemeral messages only alice saw
        assert made["flags"] & 64 and (await linked_turn(bot, made)).options["private"] is True
        refused = await world.show(code_of(made), user="bob")
        assert error_text(refused) == f"🔎 Not found: {NOT_FOUND}"
        assert world.discord.files_of(await world.show(code_of(made)))


async def test_a_member_the_server_blocked_shows_nothing_there(world: World) -> None:
    async with world.bot():
        made = await world.imagine("before the block")
        options = {"scope": "user", "user": "alice", "limit": "blocked"}
        await (await world.discord.send_slash("quota set", options, user="admin")).wait_done()
        refused = await world.show(code_of(made))
        assert "Not allowed" in title(refused) and not world.discord.files_of(refused)


async def test_show_and_history_answer_in_the_members_language(world: World) -> None:
    async with world.bot():
        made = await world.imagine("a harbour")
        code = code_of(made)
        refused = await world.show(job_code(int(code, 36) + 50), user="bob", locale="es-ES")
        assert error_text(refused) == (
            "🔎 No encontrado: No hay ningún resultado con ese id que puedas mostrar aquí."
        )
        shown = await world.show(code, locale="ja")
        assert title(shown) == f"🔎 ジョブ {code}"
        fields = embed_fields(shown)
        assert fields["作成者"] == f"<@{world.discord.users['alice']['id']}>"
        assert "Time" not in fields and "時間" not in " ".join(fields)  # not a new job: no run time

        inter = await world.discord.send_slash("history", {}, locale="pt-BR")
        page = world.discord._current(await inter.wait_done())
        assert page["content"] == "🖼️ **Seus resultados**: página 1 de 1 (1 resultado, mais recentes primeiro)"
        [select] = [c for row in page["components"] for c in row["components"] if c["type"] == 3]
        assert select["placeholder"] == "Publique um destes aqui…"

        inter = await world.discord.send_slash("history", {}, user="bob", locale="es-419")
        empty = world.discord._current(await inter.wait_done())
        assert empty["content"] == "Todavía no tienes resultados."
