"""Migrations: a failed upgrade leaves the previous revision with no partial schema, and upgrades started
together take turns (a file lock beside a SQLite database, an advisory lock on PostgreSQL)."""

from __future__ import annotations

import asyncio
import fcntl
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from bot.errors import ConfigError
from bot.storage.db import Database, current_revision, head_revision, upgrade
from bot.storage.tables import metadata
from tests.botenv import eventually, running_bot
from tests.fakes.discord import FakeDiscord
from tests.fakes.providers import FakeGemini
from tests.pg import temp_database

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")
KEY = "migration-key"
#: Revision 0004 adds two columns to quota_reservations, then creates `instances`. A table already
#: holding that name makes its third operation fail in the database itself, after the first two ran.
SQUATTER = sa.Table("instances", sa.MetaData(), sa.Column("squatter", sa.Integer))
#: quota_reservations as revision 0003 left it (0004 and 0005 add channel_id, owner and stage).
RESERVATION_COLUMNS_0003 = {
    "id",
    "guild_id",
    "user_id",
    "cost_cents",
    "status",
    "kind",
    "prompt",
    "provider",
    "model",
    "outcome",
    "counters",
    "created_at",
    "finished_at",
}
TABLES_0003 = {
    "turns",
    "turn_messages",
    "blobs",
    "quota_rules",
    "quota_counters",
    "quota_reservations",
    "guild_settings",
}


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database: a SQLite file, or a fresh PostgreSQL database."""
    async with temp_database(request.param, tmp_path / "nanobot.db") as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file that does not exist yet."""
    return f"sqlite+aiosqlite:///{tmp_path / 'nanobot.db'}"


async def _run_sync_on(url: str, work: Callable[[sa.Connection], T]) -> T:
    """Run a sync function on a connection to url, in one transaction."""
    db = await Database.open(url, migrate=False)
    try:
        async with db.begin() as conn:
            return await conn.run_sync(work)
    finally:
        await db.close()


async def squat(url: str) -> None:
    """Create the table revision 0004 is about to create, so that revision fails halfway."""
    await _run_sync_on(url, SQUATTER.create)


async def evict(url: str) -> None:
    """Drop the squatting table: the cause of the failure, fixed."""
    await _run_sync_on(url, SQUATTER.drop)


async def tables(url: str) -> set[str]:
    """The tables of the database, without alembic's own."""
    return await _run_sync_on(url, lambda c: set(sa.inspect(c).get_table_names()) - {"alembic_version"})


async def columns(url: str, table: str) -> set[str]:
    """The column names of a table."""
    return await _run_sync_on(url, lambda c: {col["name"] for col in sa.inspect(c).get_columns(table)})


async def stamped_versions(url: str) -> list[str]:
    """Every row of alembic_version (exactly one once migrated)."""
    version = sa.table("alembic_version", sa.column("version_num", sa.String))
    return await _run_sync_on(url, lambda c: list(c.execute(sa.select(version.c.version_num)).scalars()))


async def schema_diff(url: str) -> list[Any]:
    """Differences between the database and the tables the code declares (none at head)."""
    return await _run_sync_on(url, lambda c: compare_metadata(MigrationContext.configure(c), metadata))


async def assert_at_head(url: str) -> None:
    """The database is at head, stamped once, with exactly the declared schema."""
    assert await current_revision(url) == head_revision()
    assert await stamped_versions(url) == [head_revision()]
    assert await schema_diff(url) == []


async def assert_at_0003_with_squatter(url: str) -> None:
    """Revision 0003 exactly: none of 0004's columns, and only the squatter as `instances`."""
    assert await current_revision(url) == "0003"
    assert await columns(url, "quota_reservations") == RESERVATION_COLUMNS_0003
    assert await tables(url) == TABLES_0003 | {"instances"}
    assert await columns(url, "instances") == {"squatter"}


# --- a migration that fails halfway -----------------------------------------------------------------


async def test_a_migration_failing_halfway_leaves_the_previous_revision(db_url: str) -> None:
    await upgrade(db_url, "0003")
    await squat(db_url)
    with pytest.raises(ConfigError, match=r"DATABASE_URL: migrating failed on .*instances"):
        await upgrade(db_url)
    await assert_at_0003_with_squatter(db_url)
    with pytest.raises(ConfigError, match="instances"):  # the cause is still there: same failure, no drift
        await upgrade(db_url)
    await assert_at_0003_with_squatter(db_url)
    await evict(db_url)
    await upgrade(db_url)
    await assert_at_head(db_url)


async def test_on_sqlite_each_migration_commits_on_its_own(sqlite_url: str) -> None:
    await squat(sqlite_url)
    with pytest.raises(ConfigError, match="instances"):
        await upgrade(sqlite_url)
    await assert_at_0003_with_squatter(sqlite_url)  # 0001..0003 kept, 0004 undone entirely
    await evict(sqlite_url)
    await upgrade(sqlite_url)
    await assert_at_head(sqlite_url)


# --- upgrades started together ----------------------------------------------------------------------


async def test_two_upgrades_at_once_in_one_process_take_turns(db_url: str) -> None:
    await asyncio.gather(upgrade(db_url), upgrade(db_url))
    await assert_at_head(db_url)


@contextmanager
def holding(lock_file: Path) -> Iterator[None]:
    """Hold the migration lock the way another process would (flock on its own open file)."""
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield
    finally:
        os.close(fd)


def flock_waiters(lock_file: Path) -> int:
    """How many flock requests on the file are blocked (the `->` lines of /proc/locks)."""
    st = os.stat(lock_file)
    where = f" {os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino} "
    lines = Path("/proc/locks").read_text().splitlines()
    return sum(1 for line in lines if "->" in line and "FLOCK" in line and where in line)


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs Linux /proc/locks")
async def test_an_upgrade_waits_for_the_lock_without_blocking_the_event_loop(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'nanobot.db'}"
    lock_file = tmp_path / "nanobot.db.migrate.lock"
    with holding(lock_file):
        task = asyncio.create_task(upgrade(url))
        # This coroutine keeps running while the upgrade waits: the wait is not on the event loop.
        await eventually(lambda: flock_waiters(lock_file) == 1, 30, "the upgrade waiting on the lock")
        assert not task.done()
        assert await current_revision(url) is None  # nothing migrated while another holds the lock
    await asyncio.wait_for(task, 60)
    await assert_at_head(url)


@dataclass
class Run:
    code: int
    out: str
    err: str


def cli_env(url: str) -> dict[str, str]:
    """The environment of a `python -m bot` child: this checkout, and the database given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "DISCORD_", "NANOBOT_"))}
    env.update(PYTHONPATH=str(ROOT), DATABASE_URL=url)
    return env


async def start_db_upgrade(url: str, cwd: Path) -> asyncio.subprocess.Process:
    """Start `python -m bot db upgrade` on the database at url."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "db",
        "upgrade",
        cwd=cwd,
        env=cli_env(url),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def finished(proc: asyncio.subprocess.Process) -> Run:
    """Wait for a child to exit (generously: the machine may be busy)."""
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return Run(proc.returncode if proc.returncode is not None else -1, out.decode(), err.decode())


async def reap(procs: list[asyncio.subprocess.Process]) -> None:
    """Kill the children still running (a failed test must not leave them behind)."""
    for proc in procs:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def db_upgrade(url: str, cwd: Path) -> Run:
    """Run `python -m bot db upgrade` to completion."""
    return await finished(await start_db_upgrade(url, cwd))


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs Linux /proc/locks")
async def test_two_processes_upgrading_one_sqlite_file_at_once_both_succeed(
    sqlite_url: str, tmp_path: Path
) -> None:
    lock_file = tmp_path / "nanobot.db.migrate.lock"
    procs: list[asyncio.subprocess.Process] = []
    try:
        with holding(lock_file):  # so that both are surely under way together when the lock frees up
            procs = await asyncio.gather(*(start_db_upgrade(sqlite_url, tmp_path) for _ in range(2)))
            await eventually(lambda: flock_waiters(lock_file) == 2, 120, "both processes waiting on the lock")
        runs = await asyncio.gather(*(finished(proc) for proc in procs))
    finally:
        await reap(procs)
    for run in runs:
        assert (run.code, run.out.strip()) == (0, "database upgraded"), run.err
    await assert_at_head(sqlite_url)


# --- the command line and the bot after a failed, then fixed, upgrade --------------------------------


async def test_the_bot_starts_after_a_failed_then_fixed_upgrade(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'nanobot.db'}"  # where the bot keeps it in DATA_DIR
    await upgrade(url, "0003")
    await squat(url)
    failed = await db_upgrade(url, tmp_path)
    assert failed.code != 0 and "DATABASE_URL: migrating failed" in failed.err
    assert "instances" in failed.err
    await assert_at_0003_with_squatter(url)
    await evict(url)
    fixed = await db_upgrade(url, tmp_path)
    assert (fixed.code, fixed.out.strip()) == (0, "database upgraded"), fixed.err
    await assert_at_head(url)
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as gemini:
        entry = {"name": "google", "kind": "gemini", "base_url": gemini.base_url, "api_key": KEY}
        async with running_bot(fake, tmp_path, entry):
            inter = await fake.send_slash("imagine", {"prompt": "an apple"}, user="alice")
            answer = await inter.wait_done()
            assert fake.files_of(answer), answer
        assert fake.violations == []
