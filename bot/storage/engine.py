"""Engines for the bot's database: URLs, drivers, SQLite pragmas, and connection failures in words."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.errors import ConfigError

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
