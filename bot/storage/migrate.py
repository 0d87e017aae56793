"""Schema upgrades with Alembic: one transaction per migration (SQLite too), one upgrade at a time
(a file lock beside a SQLite database, an advisory lock on PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, event, func, select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from bot.errors import ConfigError
from bot.storage.engine import (
    OUTAGE_SECONDS,
    _connection_errors,
    _engine_for,
    _ping,
    _sqlite_path,
    _sqlite_pragmas,
    safe_url,
)

log = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
#: Key of the PostgreSQL advisory lock that serialises concurrent upgrades (several shards starting).
PG_MIGRATION_LOCK = 0x6E616E6F


def _sqlite_migration_setup(busy_seconds: float) -> Callable[[Any, Any], None]:
    """A connect hook for the migration connection: the usual pragmas, the driver's own transaction
    handling off (SQLAlchemy's recipe for SQLite transactional DDL), and foreign keys off."""
    set_pragmas = _sqlite_pragmas(busy_seconds)

    def setup(dbapi_connection: Any, record: Any) -> None:
        # sqlite3 opens a transaction only before INSERT/UPDATE/DELETE, so CREATE TABLE and ALTER TABLE
        # would each commit on their own; with isolation_level=None it opens none, and _begin_immediate
        # emits the BEGIN, so every statement of a migration is inside one transaction.
        dbapi_connection.isolation_level = None
        set_pragmas(dbapi_connection, record)
        # Batch migrations copy a table and DROP the old one; with foreign keys on, that DROP would
        # cascade into the referencing rows (turn_messages -> turns). SQLite ignores this pragma inside
        # a transaction, so it is set here; env.py runs foreign_key_check before each commit instead.
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=OFF")
        finally:
            cursor.close()

    return setup


def _begin_immediate(connection: Connection) -> None:
    """Open the transaction SQLAlchemy asked for, taking the write lock at once (a deferred BEGIN that
    upgrades to a writer later can fail with 'database is locked' without waiting)."""
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_migration_engine(url: URL, busy_seconds: float) -> AsyncEngine:
    """A one-connection SQLite engine whose transactions really contain the DDL of a migration."""
    engine = create_async_engine(url, poolclass=NullPool)
    event.listen(engine.sync_engine, "connect", _sqlite_migration_setup(busy_seconds))
    event.listen(engine.sync_engine, "begin", _begin_immediate)
    return engine


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, built in code: the scripts ship inside the package."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    cfg.set_main_option("path_separator", "os")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    """The newest revision the code knows."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _run_upgrade(connection: Connection, revision: str) -> None:
    """Upgrade on a sync connection: inside the caller's transaction on PostgreSQL (after taking the
    advisory lock, held until that transaction ends), one transaction per migration on SQLite."""
    if connection.dialect.name == "postgresql":
        connection.execute(select(func.pg_advisory_xact_lock(PG_MIGRATION_LOCK)))
    command.upgrade(alembic_config(connection), revision)


def _read_revision(connection: Connection) -> str | None:
    """The revision stamped in alembic_version, or None for an unmigrated database."""
    return MigrationContext.configure(connection).get_current_revision()


def _lock_path(url: URL) -> Path | None:
    """The file beside a SQLite database that upgrades take turns on (None: nothing to share)."""
    path = _sqlite_path(url) if url.get_backend_name() == "sqlite" else None
    return None if path is None else path.with_name(f"{path.name}.migrate.lock")


@asynccontextmanager
async def _file_lock(path: Path) -> AsyncIterator[None]:
    """Hold an exclusive flock on path, waiting for it in a thread so the event loop keeps serving.

    flock rather than a dependency (filelock): the bot runs on Linux (or macOS), where flock locks
    belong to the open file, so two upgrades in one process exclude each other too (POSIX fcntl
    locks would not), and the kernel drops the lock when a process dies, leaving no stale lock file.
    """
    fd = await asyncio.to_thread(os.open, path, os.O_RDONLY | os.O_CREAT, 0o644)
    waiting = asyncio.get_running_loop().run_in_executor(None, fcntl.flock, fd, fcntl.LOCK_EX)
    try:
        await asyncio.shield(waiting)
    except BaseException:
        # The thread may still get the lock after we stopped waiting: close the file once it is done.
        waiting.add_done_callback(lambda _: os.close(fd))
        raise
    try:
        yield
    finally:
        os.close(fd)  # releases the lock


def _migration_lock(url: URL) -> AbstractAsyncContextManager[None]:
    """What makes concurrent upgrades of one SQLite file take turns (PostgreSQL's is in _run_upgrade)."""
    path = _lock_path(url)
    return contextlib.nullcontext() if path is None else _file_lock(path)


async def _migrate(engine: AsyncEngine, revision: str) -> None:
    """Run the migrations up to revision, each one atomic.

    PostgreSQL has transactional DDL: the whole upgrade is one transaction under the advisory lock, so
    a failure leaves the database where the upgrade started. A SQLite file is migrated on a connection
    of its own where each migration is one transaction (env.py: transaction_per_migration), so a
    failure in migration N leaves it exactly at N-1. Batch operations (copy the table, drop the old,
    rename) are ordinary DDL and INSERT ... SELECT, so they are undone with the rest: no backup needed.
    An in-memory database lives on its engine's one connection and dies with the process.
    """
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        async with engine.begin() as conn:
            await conn.run_sync(_run_upgrade, revision)
        return
    migrator = _sqlite_migration_engine(engine.url, OUTAGE_SECONDS)
    try:
        async with migrator.connect() as conn:
            await conn.run_sync(_run_upgrade, revision)
            await conn.commit()  # an upgrade with no step may still have created alembic_version
    finally:
        await migrator.dispose()


async def _upgrade_engine(engine: AsyncEngine, revision: str) -> None:
    """Run the migrations up to revision, atomically, one process at a time."""
    await _ping(engine)
    try:
        async with _connection_errors(engine, "migrating failed on"), _migration_lock(engine.url):
            await _migrate(engine, revision)
    except CommandError as e:
        raise ConfigError(
            f"DATABASE_URL: cannot migrate {safe_url(engine.url)} ({e}; "
            "was it written by a newer version of the bot?)"
        ) from e


async def _revision_of(engine: AsyncEngine) -> str | None:
    """The current revision of the engine's database."""
    await _ping(engine)
    async with engine.connect() as conn:
        return await conn.run_sync(_read_revision)


async def upgrade(url: str, revision: str = "head") -> None:
    """Run the Alembic migrations on the database at url (start-up and `python -m bot db upgrade`)."""
    engine = await _engine_for(url)
    try:
        await _upgrade_engine(engine, revision)
    finally:
        await engine.dispose()


async def current_revision(url: str) -> str | None:
    """The revision the database at url is at, or None when it was never migrated."""
    engine = await _engine_for(url)
    try:
        return await _revision_of(engine)
    finally:
        await engine.dispose()


async def _warn_if_behind(engine: AsyncEngine) -> None:
    """Log when a database opened without migrating is not at the code's head revision."""
    current = await _revision_of(engine)
    head = await asyncio.to_thread(head_revision)
    if current != head:
        log.warning(
            "database %s is at revision %s but the code expects %s; run `python -m bot db upgrade`",
            safe_url(engine.url),
            current,
            head,
        )
