"""The styles store: names per member and per server, lookups, deletes, share codes, on both databases."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.errors import InputError, Refused
from bot.storage.db import Database
from bot.storage.styles import CODE_ALPHABET, CODE_LENGTH, MAX_STYLE_IMAGES, StyleStore, clean_code
from bot.storage.tables import styles
from bot.storage.turns import BlobRef
from tests.pg import temp_database

ALICE, BOB, CAROL = 11, 22, 33
GUILD, OTHER_GUILD = 500, 600


def ref(n: int) -> BlobRef:
    """A blob reference with a made-up hash."""
    return BlobRef(sha256=f"{n:064x}", mime="image/png", size=100 + n, width=64, height=48)


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StyleStore]:
    """A styles store on a migrated SQLite file or a fresh PostgreSQL database."""
    async with temp_database(request.param, tmp_path / "data" / "nanobot.db") as url:
        db = await Database.open(url)
        try:
            yield StyleStore(db)
        finally:
            await db.close()


async def test_a_style_keeps_its_words_images_and_an_unambiguous_code(store: StyleStore) -> None:
    saved = await store.create(ALICE, None, "  Ink   wash ", "sumi-e, loose brush", [ref(1), ref(2)])
    assert (saved.name, saved.prompt, saved.images, saved.guild_id) == (
        "Ink wash",
        "sumi-e, loose brush",
        (ref(1), ref(2)),
        0,
    )
    assert re.fullmatch(f"[{CODE_ALPHABET}]{{{CODE_LENGTH}}}", saved.share_code)
    assert not set(saved.share_code) & set("0O1I")
    assert await store.find(ALICE, GUILD, "ink WASH") == saved
    assert await store.by_code(saved.share_code.lower()[:4] + "-" + saved.share_code[4:]) == saved
    async with store.db.connect() as conn:
        [row] = list(await conn.execute(sa.select(styles.c.images)))
    assert row.images == [ref(1).to_json(), ref(2).to_json()]


async def test_names_are_unique_per_member_and_per_server(store: StyleStore) -> None:
    await store.create(ALICE, None, "ink", "a", [])
    with pytest.raises(InputError, match="You already have a style named “Ink”"):
        await store.create(ALICE, None, "Ink", "b", [])
    await store.create(BOB, None, "ink", "b", [])  # another member's own: no clash
    await store.create(ALICE, GUILD, "ink", "server ink", [])  # a server's: no clash with own
    with pytest.raises(InputError, match="This server already has a style named “ink”"):
        await store.create(BOB, GUILD, "ink", "c", [])
    await store.create(BOB, OTHER_GUILD, "ink", "c", [])
    with pytest.raises(InputError, match="This server already has"):
        await store.check_free(CAROL, GUILD, "INK")
    await store.check_free(CAROL, None, "ink")


async def test_a_member_sees_their_own_then_this_servers_and_own_wins_by_name(store: StyleStore) -> None:
    await store.create(ALICE, None, "watercolour", "soft", [])
    await store.create(BOB, GUILD, "watercolour", "server soft", [])
    await store.create(BOB, GUILD, "noir", "black and white", [ref(3)])
    await store.create(BOB, None, "secret", "bob's", [])
    await store.create(BOB, OTHER_GUILD, "elsewhere", "x", [])
    seen = await store.visible(ALICE, GUILD)
    assert [(s.name, s.is_server) for s in seen] == [
        ("watercolour", False),
        ("noir", True),
        ("watercolour", True),
    ]
    assert [s.name for s in await store.visible(ALICE, None)] == ["watercolour"]  # a DM: own only
    found = await store.find(ALICE, GUILD, "watercolour")
    assert found is not None and found.prompt == "soft"
    found = await store.find(CAROL, GUILD, "watercolour")
    assert found is not None and found.prompt == "server soft"
    assert await store.find(CAROL, GUILD, "secret") is None
    assert await store.find(CAROL, GUILD, "elsewhere") is None


async def test_delete_own_and_server_styles_only_admins_delete_server_ones(store: StyleStore) -> None:
    await store.create(ALICE, None, "ink", "a", [])
    await store.create(BOB, GUILD, "ink", "server", [])
    with pytest.raises(Refused):
        await store.delete(ALICE, GUILD, "ink", admin=False)
    with pytest.raises(InputError, match="You have no style named “pencil”"):
        await store.delete(ALICE, None, "pencil", admin=True)
    with pytest.raises(InputError, match="You have no style"):
        await store.delete(CAROL, None, "ink", admin=False)  # someone else's own style
    gone = await store.delete(ALICE, None, "INK", admin=False)
    assert not gone.is_server
    found = await store.find(ALICE, GUILD, "ink")
    assert found is not None and found.is_server
    await store.delete(CAROL, GUILD, "ink", admin=True)
    assert await store.visible(ALICE, GUILD) == []


async def test_import_copies_a_style_with_a_new_code(store: StyleStore) -> None:
    shared = await store.create(ALICE, None, "ink", "sumi-e", [ref(1)])
    copy = await store.import_code(BOB, shared.share_code)
    assert (copy.owner_id, copy.guild_id, copy.name, copy.prompt, copy.images) == (
        BOB,
        0,
        "ink",
        "sumi-e",
        (ref(1),),
    )
    assert copy.share_code != shared.share_code
    with pytest.raises(InputError, match="You already have a style named “ink”"):
        await store.import_code(BOB, shared.share_code)
    renamed = await store.import_code(BOB, shared.share_code, "ink 2")
    assert renamed.name == "ink 2"
    with pytest.raises(InputError, match="No style has the share code `ZZZZZZZZ`"):
        await store.import_code(BOB, "zzzz zzzz")
    assert clean_code(" ab-cd ef ") == "ABCDEF"


async def test_limits_refuse_empty_and_oversized_styles(store: StyleStore) -> None:
    with pytest.raises(InputError, match="at most 14 images; this one has 15"):
        await store.create(ALICE, None, "big", "x", [ref(n) for n in range(MAX_STYLE_IMAGES + 1)])
    with pytest.raises(InputError, match="needs style words"):
        await store.create(ALICE, None, "empty", "  ", [])
    with pytest.raises(InputError, match="at most 32 characters"):
        await store.create(ALICE, None, "n" * 33, "x", [])
    assert await store.visible(ALICE, None) == []
