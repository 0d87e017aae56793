"""/history through the fake Discord: a private contact sheet per page whose cells show the member's
results newest first (read from the PNG's pixels), ◀ ▶ paging in place, the menu posting one result
in the channel, and another member's history for admins only, limited to their server."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageStat

from bot.imaging.sheet import MISSING, THUMB, thumb_box
from bot.storage.blobs import blob_path
from bot.storage.db import Database
from bot.storage.gallery import count_results, recent_results
from bot.storage.turns import BlobRef, NewTurn, TurnStore
from tests.botenv import (
    GeminiWorld,
    attached_png,
    embed_fields,
    eventually,
    gemini_world,
    linked_turn,
    wait_result,
)
from tests.pg import temp_database

KEY = "history-key"
EPHEMERAL = 64


class World(GeminiWorld):
    """This file's world: the shared fakes plus the helpers its tests use."""

    async def imagine(self, prompt: str, user: str = "alice", **kw: Any) -> dict[str, Any]:
        return await wait_result(
            await self.discord.send_slash("imagine", {"prompt": prompt}, user=user, **kw)
        )

    async def history(self, user: str = "alice", **options: Any) -> dict[str, Any]:
        """/history's private answer, as it stands once drawn."""
        inter = await self.discord.send_slash("history", options, user=user)
        shown = await inter.wait_done()
        return self.discord._current(shown)

    def sheet(self, message: dict[str, Any]) -> Image.Image:
        name, image = attached_png(self.discord, message)
        assert name.endswith(".png")
        return image


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with gemini_world(World, tmp_path, KEY, ("bob",)) as world:
        yield world


def colour_of(world: World, result: dict[str, Any]) -> tuple[int, ...]:
    """The colour of a result's (one-colour) image, as posted."""
    [(_, data)] = world.discord.files_of(result)
    with Image.open(io.BytesIO(data)) as image:
        pixel = image.convert("RGB").getpixel((0, 0))
    assert isinstance(pixel, tuple)
    return pixel


def cell_colours(sheet: Image.Image, count: int) -> list[tuple[int, ...]]:
    """The average colour of the middle of each of the first `count` thumbnails."""
    quarter = THUMB // 4
    colours = []
    for index in range(count):
        left, top, right, bottom = thumb_box(index)
        crop = sheet.crop((left + quarter, top + quarter, right - quarter, bottom - quarter))
        colours.append(tuple(round(v) for v in ImageStat.Stat(crop).mean))
    return colours


def menu(message: dict[str, Any]) -> dict[str, Any]:
    """The "show one of these" select of a gallery page."""
    [select] = [c for row in message["components"] for c in row["components"] if c["type"] == 3]
    return select


def buttons(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The page buttons by their emoji."""
    found = [c for row in message["components"] for c in row["components"] if c["type"] == 2]
    return {c["emoji"]["name"]: c for c in found}


def code_of(result: dict[str, Any]) -> str:
    return embed_fields(result)["Job"].strip("`")


async def test_history_pages_show_the_results_newest_first_and_the_menu_posts_one(world: World) -> None:
    async with world.bot() as bot:
        made = [await world.imagine(f"scene {n}") for n in range(14)]
        newest = list(reversed(made))
        page = await world.history()
        assert page["flags"] & EPHEMERAL
        assert "page 1 of 2 (14 results" in page["content"]
        # The data the sheet was drawn from: numbered job ids and prompts, newest first …
        options = menu(page)["options"]
        assert [o["label"] for o in options] == [f"{n} · {code_of(m)}" for n, m in enumerate(newest[:12], 1)]
        assert [o["description"] for o in options] == [f"scene {n}" for n in range(13, 1, -1)]
        # … and its pixels: each cell shows that result's image.
        first = world.sheet(page)
        assert cell_colours(first, 12) == [colour_of(world, m) for m in newest[:12]]
        assert buttons(page)["◀️"].get("disabled") and not buttons(page)["▶️"].get("disabled")

        clicked = await world.discord.send_component(page, buttons(page)["▶️"]["custom_id"])
        await clicked.wait_ack()
        await eventually(lambda: "page 2 of 2" in world.discord._current(page)["content"], what="page 2")
        second = world.discord._current(page)  # the same private message, edited
        assert [o["label"] for o in menu(second)["options"]] == [
            f"{n} · {code_of(m)}" for n, m in enumerate(newest[12:], 1)
        ]
        assert cell_colours(world.sheet(second), 2) == [colour_of(world, m) for m in newest[12:]]
        assert world.sheet(second).height < first.height  # one row, not three
        assert buttons(second)["▶️"].get("disabled")

        chosen = made[1]
        turn = await linked_turn(bot, chosen)
        picked = await world.discord.send_component(second, menu(second)["custom_id"], values=[str(turn.id)])
        posted = await wait_result(picked)
        assert not posted["flags"] & EPHEMERAL and posted["channel_id"] == world.discord.channel_id
        assert code_of(posted) == code_of(chosen)
        assert world.discord.files_of(posted)[0][1] == world.discord.files_of(chosen)[0][1]
        assert world.gemini.calls == 14


async def test_a_result_whose_file_is_gone_is_a_grey_tile(world: World) -> None:
    async with world.bot() as bot:
        made = [await world.imagine(f"scene {n}") for n in range(2)]
        [output] = (await linked_turn(bot, made[0])).output_images
        blob_path(bot.services.blobs.root, output.sha256).unlink()
        page = await world.history()
        assert cell_colours(world.sheet(page), 2) == [colour_of(world, made[1]), MISSING]


async def test_admins_see_a_members_results_in_their_server_and_nobody_else_does(world: World) -> None:
    async with world.bot(allow_dms=True):
        await world.imagine("bob in the server", user="bob")
        await world.imagine("bob in private", user="bob", channel_id=world.discord.dm_channel("bob"))
        await world.imagine("alice's")

        own = await world.history(user="bob")
        assert [o["description"] for o in menu(own)["options"]] == ["bob in private", "bob in the server"]

        seen = await world.history(user="admin", member="bob")
        assert seen["flags"] & EPHEMERAL
        assert [o["description"] for o in menu(seen)["options"]] == ["bob in the server"]
        assert f"<@{world.discord.users['bob']['id']}>" in seen["content"]

        refused = await world.history(user="alice", member="bob")
        assert "Admins only" in refused["embeds"][0]["title"]
        assert not world.discord.files_of(refused)

        empty = await world.history(user="admin")
        assert empty["content"] == "You have no results yet." and not world.discord.files_of(empty)


async def test_a_page_past_the_end_shows_the_last(world: World) -> None:
    async with world.bot():
        await world.imagine("only one")
        page = await world.history(page=5)
        assert "page 1 of 1 (1 result," in page["content"]


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated database of either kind."""
    async with temp_database(request.param, tmp_path / "nanobot.db") as url:
        database = await Database.open(url)
        yield database
        await database.close()


async def test_the_gallery_lists_finished_results_with_images_newest_first(db: Database) -> None:
    store = TurnStore(db)
    image = BlobRef(sha256="ab" * 32, mime="image/png", size=10, width=8, height=8)

    async def add(prompt: str, **fields: Any) -> int:
        base: dict[str, Any] = {"channel_id": 5, "user_id": 7, "kind": "imagine", "output_images": [image]}
        return (await store.create(NewTurn(prompt=prompt, **{**base, **fields}))).id

    here = await add("here", guild_id=1)
    await add("elsewhere", guild_id=2)
    dm = await add("in a dm")
    private = await add("private", guild_id=1, options={"private": True})
    await add("failed", guild_id=1, status="failed")
    await add("no image", guild_id=1, output_images=[])
    await add("someone else's", guild_id=1, user_id=8)
    await store.mark_deleted(await add("deleted", guild_id=1))

    everything = await recent_results(db, 7, limit=10)
    assert [e.prompt for e in everything] == ["private", "in a dm", "elsewhere", "here"]
    assert everything[0].image == image and everything[1].turn_id == dm
    assert await count_results(db, 7) == 4
    assert [e.turn_id for e in await recent_results(db, 7, limit=2, offset=2)] == [
        everything[2].turn_id,
        here,
    ]
    in_server = await recent_results(db, 7, guild_id=1, limit=10)
    assert [e.turn_id for e in in_server] == [private, here]
    shared = await recent_results(db, 7, guild_id=1, private=False, limit=10)
    assert [e.turn_id for e in shared] == [here]
    assert await count_results(db, 7, guild_id=1, private=False) == 1
