"""The database: one async engine (SQLite by default, or PostgreSQL), migrated by Alembic at start."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Table, event, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from bot.errors import ConfigError, StorageUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")
#: Whole-transaction retries on contention (SQLite "database is locked", PostgreSQL deadlocks).
WRITE_ATTEMPTS, WRITE_RETRY_DELAY = 6, 0.1
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})


#: How long a write or a checkout keeps trying while the database is unreachable (restart, failover).
OUTAGE_SECONDS, OUTAGE_MAX_DELAY = 10.0, 2.0


def is_disconnect(error: BaseException) -> bool:
    """The database could not be reached, or the connection died under us (nothing was committed)."""
    if isinstance(error, OSError | TimeoutError):  # asyncpg's refused or timed-out connect
        return True
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return True
        name = type(error.orig).__name__
        return name in {"ConnectionDoesNotExistError", "CannotConnectNowError", "ConnectionFailureError"}
    return False


def is_contention(error: DBAPIError) -> bool:
    """Lock contention SQLite gave up on, or a PostgreSQL deadlock / serialization failure."""
    if getattr(error.orig, "sqlstate", None) in RETRYABLE_SQLSTATES:
        return True
    text = str(error.orig).lower()
    return "database is locked" in text or "database table is locked" in text


MIGRATIONS_DIR = Path(__file__).with_name("migrations")
#: Key of the PostgreSQL advisory lock that serialises concurrent upgrades (several shards starting).
PG_MIGRATION_LOCK = 0x6E616E6F
CONNECT_TIMEOUT = 10.0
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA synchronous=NORMAL",
)
#: Plain schemes people write, mapped to the async driver we ship.
ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}
URL_HINT = "expected sqlite+aiosqlite:///path/to/file.db or postgresql+asyncpg://user:password@host/dbname"


def parse_url(url: str) -> URL:
    """Parse DATABASE_URL, mapping plain sqlite:// and postgresql:// to their async drivers."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"DATABASE_URL: not a database URL; {URL_HINT}") from None
    driver = ASYNC_DRIVERS.get(parsed.drivername)
    if driver is None:
        raise ConfigError(f"DATABASE_URL: unsupported driver {parsed.drivername}; {URL_HINT}")
    return parsed.set(drivername=driver)


def safe_url(url: URL) -> str:
    """The URL with its password hidden, for logs and messages."""
    return url.render_as_string(hide_password=True)


def _sqlite_path(url: URL) -> Path | None:
    """The database file of a SQLite URL, or None for in-memory databases."""
    name = url.database
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    return Path(name)


def _sqlite_pragmas(busy_seconds: float) -> Callable[[Any, Any], None]:
    """A connect hook: WAL for concurrent readers, real FKs, and a busy timeout (another process
    holding the write lock is waited for this long) instead of an instant 'database is locked'."""

    def set_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            for pragma in (*SQLITE_PRAGMAS, f"PRAGMA busy_timeout={int(busy_seconds * 1000)}"):
                cursor.execute(pragma)
        finally:
            cursor.close()

    return set_pragmas


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


def _create_engine(url: URL, busy_seconds: float) -> AsyncEngine:
    """An engine for the URL, with the per-dialect settings."""
    if url.get_backend_name() == "sqlite":
        engine = create_async_engine(url)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas(busy_seconds))
        return engine
    connect_args = {} if "timeout" in url.query else {"timeout": CONNECT_TIMEOUT}
    return create_async_engine(url, pool_pre_ping=True, connect_args=connect_args)


async def _engine_for(url: str, busy_seconds: float = OUTAGE_SECONDS) -> AsyncEngine:
    """Parse the URL, create the SQLite folder when needed, and build the engine."""
    parsed = parse_url(url)
    path = _sqlite_path(parsed) if parsed.get_backend_name() == "sqlite" else None
    if path is not None:
        try:
            await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"DATABASE_URL: cannot create the folder {path.parent} ({e.strerror})") from e
    return _create_engine(parsed, busy_seconds)


def _reason(error: BaseException, url: URL) -> str:
    """A short cause for a failed connection, never containing the password."""
    cause = getattr(error, "orig", None) or error
    if isinstance(cause, ConnectionRefusedError):
        text = "connection refused"
    elif isinstance(cause, socket.gaierror):
        text = "unknown host"
    elif isinstance(cause, TimeoutError):
        text = "timed out"
    else:
        lines = str(cause).strip().splitlines()
        text = lines[0] if lines else type(cause).__name__
    if url.password:
        text = text.replace(str(url.password), "***")
    return text


@asynccontextmanager
async def _connection_errors(engine: AsyncEngine, action: str) -> AsyncIterator[None]:
    """Turn driver and socket failures into one ConfigError line naming DATABASE_URL."""
    try:
        yield
    except (OSError, TimeoutError, DBAPIError) as e:
        where = safe_url(engine.url)
        raise ConfigError(f"DATABASE_URL: {action} {where} ({_reason(e, engine.url)})") from e


async def _ping(engine: AsyncEngine) -> None:
    """Open one connection, so a wrong URL fails at start with a readable message."""
    async with _connection_errors(engine, "cannot connect to"), engine.connect():
        pass


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


def insert_for(dialect: str, table: Table) -> sqlite.Insert | postgresql.Insert:
    """An INSERT that supports ON CONFLICT for the dialect (both spell it the same way)."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


class Database:
    """The process's engine and its lifecycle."""

    def __init__(self, engine: AsyncEngine, url: str, *, outage_seconds: float = OUTAGE_SECONDS) -> None:
        self.engine = engine
        self.url = url
        self.outage_seconds = outage_seconds
        #: SQLite has one writer at a time: queueing writes here, in order, beats its busy handler
        #: (which sleeps in growing steps: a 3 s p99 for 16 reservations at once, measured).
        self._one_writer = asyncio.Lock() if engine.dialect.name == "sqlite" else None

    @classmethod
    async def open(
        cls, url: str, *, migrate: bool = True, outage_seconds: float = OUTAGE_SECONDS
    ) -> Database:
        """Connect (and migrate to head unless told not to); ConfigError when that fails."""
        engine = await _engine_for(url, busy_seconds=outage_seconds)
        try:
            if migrate:
                await _upgrade_engine(engine, "head")
            else:
                await _warn_if_behind(engine)
        except BaseException:
            await engine.dispose()
            raise
        log.info("database ready: %s", safe_url(engine.url))
        return cls(engine, url, outage_seconds=outage_seconds)

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()

    def begin(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection inside a transaction, committed on success and rolled back on error."""
        return self.engine.begin()

    async def write(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run work in one transaction, retrying the whole of it on lock contention or deadlock, and
        for up to outage_seconds while the database is unreachable.

        SQLite's busy timeout can run out when many jobs finish together; PostgreSQL may pick a
        deadlock victim or restart. Either way the transaction rolled back, so running it again is
        safe. (Work functions are pure SQL: an OSError here is the connection's.)
        """
        deadline = asyncio.get_running_loop().time() + self.outage_seconds
        attempt = contention = 0
        while True:
            attempt += 1
            try:
                async with self._one_writer or contextlib.nullcontext(), self.engine.begin() as conn:
                    return await work(conn)
            except (DBAPIError, OSError, TimeoutError) as e:
                if is_disconnect(e):
                    await self._wait_out(e, deadline, attempt)
                    continue
                contention += 1
                late = asyncio.get_running_loop().time() > deadline  # SQLite waited its busy timeout
                if (
                    not isinstance(e, DBAPIError)
                    or not is_contention(e)
                    or contention == WRITE_ATTEMPTS
                    or late
                ):
                    raise
                log.warning(
                    "database write hit lock contention (%s); retry %d", type(e.orig).__name__, contention
                )
                await asyncio.sleep(WRITE_RETRY_DELAY * contention)

    async def _wait_out(self, error: BaseException, deadline: float, attempt: int) -> None:
        """Sleep before the next try at an unreachable database, or raise once the budget is spent."""
        loop = asyncio.get_running_loop()
        delay = min(OUTAGE_MAX_DELAY, 0.1 * 2 ** (attempt - 1))
        if loop.time() + delay > deadline:
            raise StorageUnavailable() from error
        log.warning("database unreachable (%s); retrying in %.1f s", type(error).__name__, delay)
        await asyncio.sleep(delay)

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A connection without an explicit transaction (for reads); waits out a brief outage."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.outage_seconds
        attempt = 0
        while True:
            attempt += 1
            conn = self.engine.connect()
            try:
                await conn.start()
                break
            except (DBAPIError, OSError, TimeoutError) as e:
                if not is_disconnect(e):
                    raise
                await self._wait_out(e, deadline, attempt)
        try:
            yield conn
        finally:
            await conn.close()

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self.engine.dialect.name


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
