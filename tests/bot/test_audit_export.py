"""/audit export:True through the fake Discord: a CSV with one row per job and the columns an admin
needs (the job id /show takes, when, who, what, the cost reserved and charged, the outcome, where),
the same filters as /audit, a cap it says it hit, admins only, and forgotten members anonymous."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from bot.app import NanoBot
from bot.billing.reports import COLUMNS, EXPORT_CAP, export_jobs
from bot.billing.rules import Check, Reservation, user_subject
from bot.billing.store import QuotaStore
from bot.jobs.ids import job_code
from bot.storage.db import Database
from bot.storage.tables import quota_reservations
from bot.storage.turns import NewTurn, TurnStore
from tests.botenv import GeminiWorld, eventually, gemini_world, linked_turn, settled_usage, title, wait_result
from tests.pg import temp_database

KEY = "audit-export-key"
EPHEMERAL = 64
NB2 = "gemini-3.1-flash-image-preview"
FORMULA = "=cmd|' /C calc'!A0 a sunset"


class World(GeminiWorld):
    """The fakes, with the helpers these tests use."""

    def user_id(self, name: str) -> str:
        return str(self.discord.users[name]["id"])

    async def imagine(self, prompt: str, user: str = "alice", **options: Any) -> dict[str, Any]:
        inter = await self.discord.send_slash("imagine", {"prompt": prompt, **options}, user=user)
        return await wait_result(inter)

    async def export(self, by: str = "admin", **options: Any) -> dict[str, Any]:
        """/audit export:True's private answer to `by` (any other options are /audit's filters)."""
        inter = await self.discord.send_slash("audit", {"export": True, **options}, user=by, force=True)
        return await inter.wait_done()

    def rows(self, message: dict[str, Any]) -> list[dict[str, str]]:
        """The attached CSV's rows by column name (checking its header and name)."""
        [(name, data)] = self.discord.files_of(message)
        assert name.startswith(f"audit-{self.discord.guild_id}-") and name.endswith(".csv")
        [header, *rows] = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
        assert tuple(header) == COLUMNS
        return [dict(zip(COLUMNS, row, strict=True)) for row in rows]


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with gemini_world(World, tmp_path, KEY, ("bob",)) as world:
        yield world


async def settled(world: World, bot: NanoBot) -> None:
    for user in ("alice", "bob"):
        await settled_usage(world.discord, bot, user)


async def test_the_export_has_one_row_per_job_with_its_facts(world: World) -> None:
    async with world.bot() as bot:
        lighthouse = await world.imagine("a lighthouse", model=NB2, resolution="2K", count=2)
        assert len(world.discord.files_of(lighthouse)) == 2
        sunset = await world.imagine(FORMULA, user="bob")
        world.gemini.script("prompt_blocked")
        blocked = await world.imagine("a bad thing")
        assert not world.discord.files_of(blocked)
        await settled(world, bot)
        turns = [await linked_turn(bot, message) for message in (lighthouse, sunset)]
        audit = await bot.quotas.audit(int(world.discord.guild_id), limit=100)
        message = await world.export()
        only_bob = await world.export(user="bob")
        only_light = await world.export(text="light")

    assert message["flags"] & EPHEMERAL
    assert message["embeds"][0]["title"] == "📄 Audit export"
    assert message["embeds"][0]["description"] == "3 jobs in the file, newest first."
    rows = world.rows(message)
    assert [int(r["audit_id"]) for r in rows] == [row.id for row in audit]  # one row per job, newest first
    bad, bobs, first = rows
    assert first == {
        "job": job_code(turns[0].id),
        "audit_id": first["audit_id"],
        "time_utc": first["time_utc"],
        "member_id": world.user_id("alice"),
        "kind": "imagine",
        "provider": "google",
        "model": NB2,
        "resolution": "2K",
        "count": "2",
        "reserved_credits": "5.25",  # 1.75 (3.1 Flash) × 1.5 (2K) × 2 images
        "charged_credits": "5.25",
        "status": "committed",
        "outcome": "ok",
        "channel_id": world.discord.channel_id,
        "prompt": "a lighthouse",
    }
    made = datetime.fromisoformat(first["time_utc"].replace("Z", "+00:00"))
    assert first["time_utc"].endswith("Z") and abs(made - audit[-1].created_at) < timedelta(seconds=1)
    assert bobs["job"] == job_code(turns[1].id) and bobs["member_id"] == world.user_id("bob")
    assert bobs["prompt"] == "'" + FORMULA  # a spreadsheet shows it, never runs it
    assert (bad["status"], bad["charged_credits"], bad["reserved_credits"]) == ("refunded", "0", "1")
    assert "SafetyBlocked" in bad["outcome"] and bad["prompt"] == "a bad thing"
    assert bad["job"] == ""  # it delivered no result
    assert [r["prompt"] for r in world.rows(only_bob)] == ["'" + FORMULA]
    assert [r["prompt"] for r in world.rows(only_light)] == ["a lighthouse"]


async def test_only_admins_may_export(world: World) -> None:
    async with world.bot():
        await world.imagine("a lighthouse")
        refused = await world.export(by="alice")
    assert "Admins only" in title(refused) and refused["flags"] & EPHEMERAL
    assert not world.discord.files_of(refused)


async def test_a_long_history_is_capped_and_says_so(world: World) -> None:
    async with world.bot() as bot:
        assert bot.db is not None
        guild, alice = int(world.discord.guild_id), int(world.user_id("alice"))
        start = datetime.now(UTC) - timedelta(days=3)
        rows = [
            {
                "guild_id": guild,
                "user_id": alice,
                "cost_cents": 100,
                "status": "committed",
                "kind": "imagine",
                "prompt": f"job {n}",
                "counters": [],
                "created_at": start + timedelta(seconds=n),
            }
            for n in range(EXPORT_CAP + 3)
        ]
        await bot.db.write(lambda conn: conn.execute(insert(quota_reservations), rows))
        message = await world.export()
    description = message["embeds"][0]["description"]
    assert f"{EXPORT_CAP} jobs in the file" in description and f"only the newest {EXPORT_CAP}" in description
    exported = world.rows(message)
    assert len(exported) == EXPORT_CAP
    assert exported[0]["prompt"] == f"job {EXPORT_CAP + 2}" and exported[-1]["prompt"] == "job 3"


async def test_no_job_no_file(world: World) -> None:
    async with world.bot():
        message = await world.export()
    assert message["embeds"][0]["description"] == "No jobs match." and not world.discord.files_of(message)


async def test_a_forgotten_members_rows_are_anonymous(world: World) -> None:
    async with world.bot() as bot:
        await world.imagine("a secret garden")
        await world.imagine("a harbour", user="bob")
        await settled(world, bot)
        asked = await (await world.discord.send_slash("forget", {})).wait_done()
        [confirm] = [
            c["custom_id"]
            for row in asked["components"]
            for c in row["components"]
            if c.get("label") == "Delete my data"
        ]
        clicked = await world.discord.send_component(asked, confirm)
        await clicked.wait_done()
        await eventually(lambda: "✅" in str((clicked.original or {}).get("content")), what="forgotten")
        message = await world.export()
    rows = world.rows(message)
    assert [(r["member_id"], r["prompt"], r["job"] == "") for r in rows] == [
        (world.user_id("bob"), "a harbour", False),
        ("0", "", True),  # the cost stays on record, not who asked for what
    ]
    assert "a secret garden" not in str(rows)


# --- jobs matched to their turns, on both databases ------------------------------------------------

G, ALICE, BOB = 5, 11, 12


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async with temp_database(request.param, tmp_path / "export.db") as url:
        database = await Database.open(url)
        try:
            yield database
        finally:
            await database.close()


async def reserve(store: QuotaStore, user: int, prompt: str, channel: int) -> int:
    check = Check(G, user_subject(user), "day", None, "x")
    held = await store.reserve(
        guild_id=G,
        user_id=user,
        cost_cents=100,
        checks=[check],
        kind="imagine",
        prompt=prompt,
        channel_id=channel,
    )
    assert isinstance(held, Reservation)
    return held.id


async def test_each_job_names_the_result_it_delivered(db: Database) -> None:
    store, turns = QuotaStore(db), TurnStore(db)

    def turn(user: int, prompt: str, channel: int, count: int) -> NewTurn:
        options = {"resolution": "1K", "count": count}
        return NewTurn(
            guild_id=G, channel_id=channel, user_id=user, kind="imagine", prompt=prompt, options=options
        )

    first = await reserve(store, ALICE, "a cat", 7)
    second = await reserve(store, ALICE, "a cat", 7)  # the same prompt at once: each its own result
    one = await turns.create(turn(ALICE, "a cat", 7, 1))
    two = await turns.create(turn(ALICE, "a cat", 7, 2))
    await store.commit(second, turn_id=two.id)  # settled in the other order
    await store.commit(first, turn_id=one.id)
    bobs = await reserve(store, BOB, "a dog", 8)
    await turns.create(turn(BOB, "a dog", 8, 3))  # a result of his that this job did not deliver
    await store.refund(bobs, outcome="failed")

    lines, capped = await export_jobs(db, G)
    assert not capped
    assert [(line.audit_id, line.turn_id, line.count) for line in lines] == [
        (bobs, None, None),
        (second, two.id, 2),
        (first, one.id, 1),
    ]
    assert [line.resolution for line in lines] == [None, "1K", "1K"]
    newest, capped = await export_jobs(db, G, cap=2)
    assert capped and [line.audit_id for line in newest] == [bobs, second]
    assert [line.audit_id for line in (await export_jobs(db, G, user_id=BOB))[0]] == [bobs]
    assert [line.audit_id for line in (await export_jobs(db, G, text="cat"))[0]] == [second, first]
