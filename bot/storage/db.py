"""The database: one async engine (SQLite by default, or PostgreSQL), migrated by Alembic at start."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TypeVar

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.errors import StorageUnavailable
from bot.storage.engine import (
    OUTAGE_MAX_DELAY,
    OUTAGE_SECONDS,
    WRITE_ATTEMPTS,
    WRITE_RETRY_DELAY,
    _engine_for,
    is_contention,
    is_disconnect,
    safe_url,
)
from bot.storage.migrate import (
    _upgrade_engine,
    _warn_if_behind,
    alembic_config,
    current_revision,
    head_revision,
    upgrade,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

__all__ = ["Database", "alembic_config", "current_revision", "head_revision", "insert_for", "upgrade"]


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
