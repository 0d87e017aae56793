"""Forgetting a member and prompt retention, on SQLite and on PostgreSQL."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bot.storage.blobs import BlobStore, blob_path
from bot.storage.db import Database
from bot.storage.forget import ForgetStore
from bot.storage.retention import PromptRetention, Pruned
from bot.storage.tables import member_prefs, metadata, quota_reservations, styles, turns, utcnow
from bot.storage.turns import BlobRef, NewTurn, TurnStore
from tests.pg import temp_database

ALICE, BOB = 7, 8
ALICE_PROMPTS = ("a secret harbour at dawn", "make the gulls crimson")
BOB_PROMPT = "add a lighthouse"
ALICE_STYLE = "alice's watercolour words"


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated, empty database of either kind."""
    async with temp_database(request.param, tmp_path / "nanobot.db") as url:
        database = await Database.open(url)
        yield database
        await database.close()


@dataclass
class Scene:
    """Two members' data: alice's turns, style, prefs and audit rows; bob's conversation continued
    from alice's result (one of her images is his input too)."""

    db: Database
    turns: TurnStore
    blobs: BlobStore
    alice_only: list[BlobRef]
    shared: BlobRef
    bob_only: BlobRef
    alice_turns: list[int]
    bob_turn: int


async def put(blobs: BlobStore, name: str) -> BlobRef:
    """Store a small made-up image file."""
    return await blobs.put(hashlib.sha256(name.encode()).digest() * 8, "image/png", 16, 16)


async def audit_row(db: Database, user_id: int, prompt: str, *, status: str = "committed") -> None:
    """An audit row (a charged job) of the member."""
    row = {"guild_id": 1, "user_id": user_id, "cost_cents": 4, "status": status, "kind": "imagine"}
    async with db.begin() as conn:
        await conn.execute(sa.insert(quota_reservations).values(prompt=prompt, **row))


async def style_row(db: Database, owner: int, prompt: str, images: list[BlobRef], code: str) -> None:
    """A saved style of the member."""
    row = {"owner_id": owner, "name": f"s{owner}", "prompt": prompt, "share_code": code}
    async with db.begin() as conn:
        await conn.execute(sa.insert(styles).values(images=[i.to_json() for i in images], **row))


@pytest.fixture
async def scene(db: Database, tmp_path: Path) -> Scene:
    store, blobs = TurnStore(db), BlobStore(tmp_path / "blobs", db)
    first, second, style_img, shared, bob_only = [await put(blobs, n) for n in ("a1", "a2", "as", "sh", "b")]
    root = await store.create(
        NewTurn(channel_id=1, guild_id=1, user_id=ALICE, kind="imagine", prompt=ALICE_PROMPTS[0],
                options={"prompt_suffix": ALICE_PROMPTS[0]}, output_images=[first, shared])
    )  # fmt: skip
    edit = await store.create(
        NewTurn(channel_id=2, guild_id=2, user_id=ALICE, kind="edit", prompt=ALICE_PROMPTS[1],
                parent_id=root.id, model_text=ALICE_PROMPTS[1], output_images=[second])
    )  # fmt: skip
    await store.attach_messages(root.id, 1, [100])
    await store.attach_messages(edit.id, 2, [101])
    bob = await store.create(
        NewTurn(channel_id=1, guild_id=1, user_id=BOB, kind="edit", prompt=BOB_PROMPT, parent_id=root.id,
                input_images=[shared], output_images=[bob_only])
    )  # fmt: skip
    await store.attach_messages(bob.id, 1, [102])
    await style_row(db, ALICE, ALICE_STYLE, [style_img], "ALICE1")
    await style_row(db, BOB, "bob's style", [bob_only], "BOB1")
    async with db.begin() as conn:
        prefs = [{"user_id": ALICE, "data": {"suffix": ALICE_PROMPTS[1]}}, {"user_id": BOB, "data": {}}]
        await conn.execute(sa.insert(member_prefs), prefs)
    for prompt in ALICE_PROMPTS:
        await audit_row(db, ALICE, prompt)
    await audit_row(db, BOB, BOB_PROMPT)
    return Scene(db, store, blobs, [first, second, style_img], shared, bob_only, [root.id, edit.id], bob.id)


async def every_value(db: Database) -> list[str]:
    """Every value of every row of every table, as text (JSON columns included)."""
    found: list[str] = []
    async with db.connect() as conn:
        for table in metadata.sorted_tables:
            for row in await conn.execute(sa.select(table)):
                found += [str(value) for value in row]
    return found


async def count(db: Database, query: Any) -> int:
    async with db.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


async def test_forget_removes_every_trace_and_keeps_other_members_data(scene: Scene) -> None:
    forgotten = await ForgetStore(scene.db, scene.blobs).forget(ALICE)
    assert (forgotten.results, forgotten.images, forgotten.prefs, forgotten.styles) == (2, 3, True, 1)
    assert forgotten.audit_rows == 2 and not forgotten.busy
    values = await every_value(scene.db)
    for secret in (*ALICE_PROMPTS, ALICE_STYLE):
        assert not [v for v in values if secret in v], secret
    for ref in scene.alice_only:
        assert not blob_path(scene.blobs.root, ref.sha256).exists()
    for ref in (scene.shared, scene.bob_only):  # bob's input and output stay
        assert await scene.blobs.get(ref) is not None
    bob = await scene.turns.get(scene.bob_turn)
    assert bob is not None and bob.prompt == BOB_PROMPT and bob.parent_id is None and bob.status == "done"
    assert bob.message_ids == (102,)
    lineage, _ = await scene.turns.lineage(scene.bob_turn, 8)
    assert [t.id for t in lineage] == [scene.bob_turn]
    for turn_id in scene.alice_turns:
        assert await scene.turns.get(turn_id) is None
    assert await scene.turns.by_message(100) is None
    q = quota_reservations
    assert await count(scene.db, sa.select(sa.func.count()).where(q.c.user_id == ALICE)) == 0
    anonymous = sa.select(sa.func.sum(q.c.cost_cents)).where(q.c.user_id == 0, q.c.prompt == "")
    assert await count(scene.db, anonymous) == 8  # the server's totals keep alice's costs
    assert "bob's style" in values and BOB_PROMPT in values
    again = await ForgetStore(scene.db, scene.blobs).forget(ALICE)
    assert (again.results, again.images, again.styles, again.prefs) == (0, 0, 0, False)


async def test_forget_waits_while_a_job_of_the_member_is_held(scene: Scene) -> None:
    await audit_row(scene.db, ALICE, "one more harbour", status="reserved")
    forgotten = await ForgetStore(scene.db, scene.blobs).forget(ALICE)
    assert forgotten.busy == 1 and forgotten.results == 0
    for turn_id in scene.alice_turns:
        assert await scene.turns.get(turn_id) is not None
    assert any(ALICE_PROMPTS[0] in v for v in await every_value(scene.db))


async def test_retention_prunes_old_turns_and_blanks_old_prompts(scene: Scene) -> None:
    old = utcnow() - timedelta(days=40)
    async with scene.db.begin() as conn:
        await conn.execute(sa.update(turns).where(turns.c.id.in_(scene.alice_turns)).values(created_at=old))
        await conn.execute(
            sa.update(quota_reservations).where(quota_reservations.c.user_id == ALICE).values(created_at=old)
        )
    assert await PromptRetention(scene.db, scene.blobs, None).prune() == Pruned()  # unset: kept
    pruned = await PromptRetention(scene.db, scene.blobs, 30).prune()
    assert (pruned.turns, pruned.images, pruned.prompts) == (2, 2, 2)  # the style's image stays
    for turn_id in scene.alice_turns:
        assert await scene.turns.get(turn_id) is None
    bob = await scene.turns.get(scene.bob_turn)
    assert bob is not None and bob.prompt == BOB_PROMPT
    assert await scene.blobs.get(scene.shared) is not None
    q = quota_reservations
    kept = sa.select(sa.func.sum(q.c.cost_cents)).where(q.c.user_id == ALICE, q.c.prompt == "")
    assert await count(scene.db, kept) == 8
    async with scene.db.connect() as conn:
        rows = [*await conn.execute(sa.select(turns)), *await conn.execute(sa.select(q))]
    assert not [row for row in rows if any(p in str(v) for v in row for p in ALICE_PROMPTS)]
