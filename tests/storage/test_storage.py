"""Storage: migrations, turn records and blobs, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from bot.errors import ConfigError
from bot.storage import blobs as blobs_module
from bot.storage.blob_users import blobs_still_used
from bot.storage.blobs import BlobStore, blob_path
from bot.storage.db import Database, alembic_config, current_revision, head_revision, upgrade
from bot.storage.tables import UTCDateTime, blobs, metadata, styles, turn_messages, turns
from bot.storage.turns import BlobRef, NewTurn, TurnStore
from tests.pg import temp_database

PNG = "image/png"

#: The turns table exactly as revision 0001 created it, so old-revision inserts never touch newer columns.
turns_0001 = sa.table(
    "turns",
    sa.column("id", sa.BigInteger),
    sa.column("channel_id", sa.BigInteger),
    sa.column("user_id", sa.BigInteger),
    sa.column("kind", sa.String),
    sa.column("status", sa.String),
    sa.column("prompt", sa.Text),
    sa.column("options", sa.JSON),
    sa.column("input_images", sa.JSON),
    sa.column("output_images", sa.JSON),
    sa.column("provider_state", sa.JSON),
    sa.column("created_at", UTCDateTime),
    sa.column("updated_at", UTCDateTime),
)


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database: a SQLite file in a folder that does not exist yet, or a fresh PG database."""
    async with temp_database(request.param, tmp_path / "data" / "nanobot.db") as url:
        yield url


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    """A migrated database."""
    database = await Database.open(db_url)
    yield database
    await database.close()


@pytest.fixture
def store(db: Database) -> TurnStore:
    """A turn store on the test database."""
    return TurnStore(db)


def ref(n: int) -> BlobRef:
    """A blob reference with a made-up hash."""
    return BlobRef(sha256=f"{n:064x}", mime=PNG, size=100 + n, width=64, height=48)


def turn(**fields: Any) -> NewTurn:
    """A done imagine turn in channel 1 by user 7, with one output image unless told otherwise."""
    base: dict[str, Any] = {"channel_id": 1, "user_id": 7, "kind": "imagine", "output_images": [ref(1)]}
    return NewTurn(**{**base, **fields})


async def table_names(db: Database) -> set[str]:
    """The tables in the database."""
    async with db.connect() as conn:
        return set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))


# --- migrations -------------------------------------------------------------------------------------


async def test_migrates_an_empty_database_to_head(db_url: str) -> None:
    assert await current_revision(db_url) is None
    await upgrade(db_url)
    assert await current_revision(db_url) == head_revision()
    db = await Database.open(db_url, migrate=False)
    try:
        assert {"turns", "turn_messages", "blobs", "alembic_version"} <= await table_names(db)
    finally:
        await db.close()


async def test_upgrading_twice_is_a_no_op(db: Database, store: TurnStore) -> None:
    record = await store.create(turn(prompt="kept"))
    await upgrade(db.url)
    await upgrade(db.url)
    assert await current_revision(db.url) == head_revision()
    assert (await store.get(record.id)) == record


async def test_rows_written_at_every_revision_survive_the_upgrade_to_head(db_url: str) -> None:
    script = ScriptDirectory.from_config(alembic_config())
    revisions = [r.revision for r in reversed(list(script.walk_revisions()))]
    written: dict[int, str] = {}
    for revision in revisions:
        await upgrade(db_url, revision)
        written[await insert_0001_turn(db_url, f"made at {revision}")] = revision
    await upgrade(db_url)
    db = await Database.open(db_url)
    try:
        for turn_id, revision in written.items():
            record = await TurnStore(db).get(turn_id)
            assert record is not None
            assert (record.prompt, record.options, record.output_images) == (
                f"made at {revision}",
                {"revision": revision},
                (ref(3),),
            )
    finally:
        await db.close()


async def insert_0001_turn(url: str, prompt: str) -> int:
    """Insert a turn with Core using only the columns of revision 0001; return its id."""
    now = datetime.now(UTC)
    values = {
        "channel_id": 5,
        "user_id": 6,
        "kind": "imagine",
        "status": "done",
        "prompt": prompt,
        "options": {"revision": prompt.removeprefix("made at ")},
        "input_images": [],
        "output_images": [ref(3).to_json()],
        "provider_state": {},
        "created_at": now,
        "updated_at": now,
    }
    db = await Database.open(url, migrate=False)
    try:
        async with db.begin() as conn:
            result = await conn.execute(turns_0001.insert().values(values).returning(turns_0001.c.id))
            return int(result.scalar_one())
    finally:
        await db.close()


async def test_the_tables_match_the_migrations(db: Database) -> None:
    async with db.connect() as conn:
        diff = await conn.run_sync(lambda c: compare_metadata(MigrationContext.configure(c), metadata))
    assert diff == []


async def test_a_database_from_a_newer_bot_is_a_config_error(db: Database) -> None:
    async with db.begin() as conn:
        await conn.execute(
            sa.table("alembic_version", sa.column("version_num")).update().values(version_num="9999")
        )
    with pytest.raises(ConfigError, match=r"DATABASE_URL: cannot migrate .*'9999'.*newer version"):
        await upgrade(db.url)


async def test_sqlite_pragmas_are_in_effect(tmp_path: Path) -> None:
    db = await Database.open(f"sqlite+aiosqlite:///{tmp_path / 'nested' / 'bot.db'}")
    try:
        async with db.connect() as conn:
            pragmas = {
                name: (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()
                for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
            }
    finally:
        await db.close()
    assert pragmas == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 10000, "synchronous": 1}


async def test_an_unreachable_postgres_is_a_config_error_without_the_password() -> None:
    url = "postgresql+asyncpg://nanobot:hunter2-secret@127.0.0.1:1/nanobot"
    with pytest.raises(ConfigError) as info:
        await Database.open(url)
    message = info.value.user_message
    assert message.startswith("DATABASE_URL: cannot connect to postgresql+asyncpg://nanobot:***@127.0.0.1:1/")
    assert "hunter2" not in message and "\n" not in message


async def test_an_unsupported_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL: unsupported driver mysql"):
        await Database.open("mysql://user:pw@host/db")


# --- turns ------------------------------------------------------------------------------------------


async def test_a_root_is_its_own_root_and_children_inherit_it(store: TurnStore) -> None:
    root = await store.create(turn(guild_id=99, prompt="a banana"))
    child = await store.create(turn(parent_id=root.id, kind="edit", input_images=[ref(1)]))
    grandchild = await store.create(turn(parent_id=child.id, kind="refine"))
    assert root.root_id == root.id and root.parent_id is None
    assert (child.root_id, child.parent_id) == (root.id, root.id)
    assert (grandchild.root_id, grandchild.parent_id) == (root.id, child.id)
    assert (root.guild_id, root.kind, root.status, root.prompt) == (99, "imagine", "done", "a banana")
    assert child.input_images == (ref(1),) and child.output_images == (ref(1),)
    assert root.created_at.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - root.created_at) < timedelta(minutes=1)


async def test_create_refuses_a_missing_parent_and_unknown_kinds(store: TurnStore) -> None:
    with pytest.raises(LookupError):
        await store.create(turn(parent_id=12345))
    with pytest.raises(ValueError):
        await store.create(turn(kind="paint"))
    async with store.db.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(turns))).scalar() == 0


async def test_messages_attach_idempotently_and_find_their_turn(store: TurnStore) -> None:
    first = await store.create(turn())
    other = await store.create(turn())
    await store.attach_messages(first.id, 1, [1001, 1002])
    await store.attach_messages(first.id, 1, [1002, 1003, 1003])
    await store.attach_messages(other.id, 1, [1001])
    await store.attach_messages(other.id, 1, [])
    found = await store.by_message(1003)
    assert found is not None and found.id == first.id
    assert found.message_ids == (1001, 1002, 1003)
    claimed = await store.by_message(1001)
    assert claimed is not None and claimed.id == first.id
    assert await store.by_message(4242) is None


async def test_failed_turns_are_recorded(store: TurnStore) -> None:
    record = await store.create(turn())
    await store.mark_failed(record.id, "provider timed out")
    failed = await store.get(record.id)
    assert failed is not None
    assert (failed.status, failed.error) == ("failed", "provider timed out")
    assert failed.updated_at >= record.updated_at
    direct = await store.create(turn(status="failed", error="blocked", output_images=[]))
    assert (direct.status, direct.error, direct.root_id) == ("failed", "blocked", direct.id)
    assert await store.get(999_999) is None


async def test_concurrent_creates_all_land(store: TurnStore) -> None:
    root = await store.create(turn())
    made = await asyncio.gather(*(store.create(turn(parent_id=root.id, prompt=str(n))) for n in range(20)))
    assert len({t.id for t in made}) == 20 and {t.root_id for t in made} == {root.id}


async def test_opening_without_migrating_warns_when_behind(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    await upgrade(db_url, "base")
    with caplog.at_level(logging.WARNING, logger="bot.storage.migrate"):
        db = await Database.open(db_url, migrate=False)
    await db.close()
    assert "python -m bot db upgrade" in caplog.text
    assert await current_revision(db_url) is None


async def chain(store: TurnStore, length: int) -> list[int]:
    """Create a root and length-1 descendants, each the child of the previous; return their ids."""
    ids = [(await store.create(turn(prompt="p0"))).id]
    for n in range(1, length):
        ids.append((await store.create(turn(parent_id=ids[-1], kind="refine", prompt=f"p{n}"))).id)
    return ids


async def test_lineage_is_cut_to_depth_oldest_first(store: TurnStore) -> None:
    ids = await chain(store, 10)
    await store.attach_messages(ids[-1], 1, [77])
    turns_, truncated = await store.lineage(ids[-1], 8)
    assert [t.id for t in turns_] == ids[2:] and truncated
    assert [t.prompt for t in turns_] == [f"p{n}" for n in range(2, 10)]
    assert turns_[-1].message_ids == (77,)
    assert {t.root_id for t in turns_} == {ids[0]}
    full, truncated = await store.lineage(ids[-1], 10)
    assert [t.id for t in full] == ids and not truncated
    assert [t.id for t in (await store.lineage(ids[0], 8))[0]] == [ids[0]]
    assert await store.lineage(ids[4], 3) == ((await store.lineage(ids[-1], 10))[0][2:5], True)
    assert await store.lineage(424242, 8) == ([], False)


async def test_each_branch_has_its_own_lineage(store: TurnStore) -> None:
    root = await store.create(turn(prompt="root"))
    left = await store.create(turn(parent_id=root.id, kind="vary", prompt="left"))
    right = await store.create(turn(parent_id=root.id, kind="reroll", prompt="right"))
    left2 = await store.create(turn(parent_id=left.id, kind="refine", prompt="left2"))
    assert [t.prompt for t in (await store.lineage(left2.id, 8))[0]] == ["root", "left", "left2"]
    assert [t.prompt for t in (await store.lineage(right.id, 8))[0]] == ["root", "right"]


async def test_latest_in_channel_skips_failures_imageless_turns_and_other_channels(store: TurnStore) -> None:
    assert await store.latest_in_channel(1) is None
    wanted = await store.create(turn(prompt="wanted"))
    await store.create(turn(status="failed", error="x"))
    await store.create(turn(output_images=[], model_text="only text"))
    await store.create(turn(channel_id=2))
    marked = await store.create(turn())
    await store.mark_failed(marked.id, "upload failed")
    latest = await store.latest_in_channel(1)
    assert latest is not None and latest.id == wanted.id


async def test_json_round_trips_byte_exact(store: TurnStore) -> None:
    signature = base64.b64encode(os.urandom(48_000)).decode()
    options = {"aspect_ratio": "16:9", "count": 2, "nested": {"list": [1, 2.5, None, True]}, "text": "🍌 ünï"}
    state = {"thought_signature": signature, "parts": [{"text": "thinking…"}]}
    created = await store.create(turn(options=options, provider_state=state, model_text="here"))
    loaded = await store.get(created.id)
    assert loaded is not None and loaded == created
    assert loaded.options == options
    assert loaded.provider_state["thought_signature"] == signature


async def test_foreign_keys_set_null_and_cascade(store: TurnStore) -> None:
    parent = await store.create(turn())
    child = await store.create(turn(parent_id=parent.id))
    await store.attach_messages(parent.id, 1, [5])
    async with store.db.begin() as conn:
        await conn.execute(sa.delete(turns).where(turns.c.id == parent.id))
    orphan = await store.get(child.id)
    assert orphan is not None and orphan.parent_id is None and orphan.root_id == parent.id
    async with store.db.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(turn_messages))).scalar() == 0


# --- blobs ------------------------------------------------------------------------------------------


def blob_files(root: Path) -> list[Path]:
    """Every file under the blob root."""
    return sorted(p for p in root.rglob("*") if p.is_file())


async def blob_rows(db: Database) -> int:
    """How many blob rows exist."""
    async with db.connect() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(blobs))).scalar_one())


async def test_put_returns_the_sha256_and_dedups(db: Database, tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    store = BlobStore(root, db)
    data = b"\x89PNG fake image bytes"
    first = await store.put(data, PNG, 3, 2)
    again = await store.put(data, PNG, 3, 2)
    assert (
        first
        == again
        == BlobRef(sha256=hashlib.sha256(data).hexdigest(), mime=PNG, size=len(data), width=3, height=2)
    )
    assert blob_files(root) == [blob_path(root, first.sha256)]
    assert await blob_rows(db) == 1
    assert await store.get(first) == data and await store.get(first.sha256) == data
    assert await store.exists(first.sha256)


async def test_missing_and_corrupt_files_read_as_none(db: Database, tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    store = BlobStore(root, db)
    gone = await store.put(b"gone", PNG, 1, 1)
    blob_path(root, gone.sha256).unlink()
    assert await store.get(gone) is None and not await store.exists(gone.sha256)
    bad = await store.put(b"original", PNG, 1, 1)
    blob_path(root, bad.sha256).write_bytes(b"tampered")
    assert await store.get(bad) is None
    assert not blob_path(root, bad.sha256).exists()
    again = await store.put(b"original", PNG, 1, 1)
    assert await store.get(again) == b"original"
    with pytest.raises(ValueError):
        await store.get("../../etc/passwd")


async def test_prune_deletes_only_blobs_unused_within_retention(db: Database, tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    store = BlobStore(root, db, retention_days=7)
    old = await store.put(b"old", PNG, 1, 1)
    fresh = await store.put(b"fresh", PNG, 1, 1)
    async with db.begin() as conn:
        stale = datetime.now(UTC) - timedelta(days=30)
        await conn.execute(sa.update(blobs).where(blobs.c.sha256 == old.sha256).values(last_used_at=stale))
    assert await store.prune() == 1
    assert not await store.exists(old.sha256) and await store.exists(fresh.sha256)
    assert await blob_rows(db) == 1
    assert await store.prune(now=datetime.now(UTC) + timedelta(days=6)) == 0
    assert await store.prune(now=datetime.now(UTC) + timedelta(days=8)) == 1
    assert blob_files(root) == [] and await blob_rows(db) == 0
    assert await BlobStore(root, db).prune(now=datetime.now(UTC) + timedelta(days=999)) == 0


async def test_prune_keeps_a_saved_styles_images(db: Database, tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs", db, retention_days=7)
    kept, loose = await store.put(b"style image", PNG, 1, 1), await store.put(b"loose", PNG, 1, 1)
    async with db.begin() as conn:
        stale = datetime.now(UTC) - timedelta(days=30)
        await conn.execute(sa.update(blobs).values(last_used_at=stale))
        await conn.execute(
            sa.insert(styles).values(owner_id=1, name="ink", images=[kept.to_json()], share_code="ABCD2345")
        )
    assert await store.prune() == 1  # no copy of a style's image on Discord: it stays with its style
    assert await store.exists(kept.sha256) and not await store.exists(loose.sha256)


def gated(
    fn: Callable[..., Any], in_worker: threading.Event, loop_ran: threading.Event
) -> Callable[..., Any]:
    """Wrap a blob worker so it only returns once the event loop has run while it was working."""

    def wrapped(*args: Any) -> Any:
        in_worker.set()
        try:
            result = fn(*args)
            if not loop_ran.wait(10):
                raise AssertionError("the event loop did not run while the blob worker was busy")
            return result
        finally:
            in_worker.clear()
            loop_ran.clear()

    return wrapped


async def test_big_blobs_are_hashed_and_written_off_the_event_loop(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_worker, loop_ran = threading.Event(), threading.Event()
    for name in ("_store_file", "_load_file"):
        monkeypatch.setattr(blobs_module, name, gated(getattr(blobs_module, name), in_worker, loop_ran))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            if in_worker.is_set():
                loop_ran.set()
            ticks += 1
            await asyncio.sleep(0.001)

    task = asyncio.create_task(ticker())
    try:
        data = os.urandom(20 * 1024 * 1024)
        store = BlobStore(tmp_path / "blobs", db)
        before = ticks
        stored = await store.put(data, PNG, 4096, 4096)
        assert ticks > before
        assert await store.get(stored) == data
    finally:
        task.cancel()


@pytest.mark.parametrize("asked", [4, 40])  # one by one, and in one pass over the tables
async def test_which_blobs_are_still_used_by_turns_and_styles(db: Database, asked: int) -> None:
    shas = [hashlib.sha256(str(n).encode()).hexdigest() for n in range(asked)]
    ref = {"mime": PNG, "size": 1, "width": 1, "height": 1}
    async with db.begin() as conn:
        rows = [
            ("done", [shas[0]], [shas[1]]),  # a finished turn's input and output
            ("failed", [], [shas[2]]),  # a failed turn keeps nothing
        ]
        for n, (status, inputs, outputs) in enumerate(rows):
            await conn.execute(
                sa.insert(turns).values(
                    channel_id=1,
                    user_id=n,
                    kind="imagine",
                    status=status,
                    input_images=[{**ref, "sha256": s} for s in inputs],
                    output_images=[{**ref, "sha256": s} for s in outputs],
                )
            )
        images = [{**ref, "sha256": shas[3]}]
        await conn.execute(
            sa.insert(styles).values(owner_id=1, name="s", images=images, share_code="XY2345AB")
        )
    async with db.connect() as conn:
        assert await blobs_still_used(conn, shas) == {shas[0], shas[1], shas[3]}
