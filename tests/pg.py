"""PostgreSQL for tests: probe the local server and hand out throwaway databases."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import column, func, select, table, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_SERVER = f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}"
ADMIN_URL = f"{PG_SERVER}/postgres"
PROBE_TIMEOUT = 5.0

pg_stat_activity = table("pg_stat_activity", column("pid"), column("datname"))


async def pg_probe() -> str | None:
    """None when something answers at 127.0.0.1:5432, else why not."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(PG_HOST, PG_PORT), PROBE_TIMEOUT)
    except (OSError, TimeoutError) as e:
        return str(e) or type(e).__name__
    writer.close()
    await writer.wait_closed()
    return None


async def pg_admin_url() -> str | None:
    """The URL of the `postgres` maintenance database, or None when no server answers."""
    return None if await pg_probe() is not None else ADMIN_URL


async def require_pg() -> str:
    """The admin URL, or skip the test saying why PostgreSQL is unavailable."""
    reason = await pg_probe()
    if reason is not None:
        pytest.skip(f"no PostgreSQL at {PG_HOST}:{PG_PORT}: {reason}")
    return ADMIN_URL


def _admin_engine() -> AsyncEngine:
    """An AUTOCOMMIT engine on the maintenance database (CREATE/DROP DATABASE refuse transactions)."""
    return create_async_engine(ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)


async def _drop(engine: AsyncEngine, name: str) -> None:
    """Terminate the database's other sessions, then drop it."""
    quoted = engine.dialect.identifier_preparer.quote(name)
    others = select(func.pg_terminate_backend(pg_stat_activity.c.pid)).where(
        pg_stat_activity.c.datname == name, pg_stat_activity.c.pid != func.pg_backend_pid()
    )
    async with engine.connect() as conn:
        await conn.execute(others)
        await conn.execute(text(f"DROP DATABASE IF EXISTS {quoted}"))


@asynccontextmanager
async def temp_pg_database() -> AsyncIterator[str]:
    """A fresh, randomly named database for one test, dropped afterwards; yields its asyncpg URL."""
    await require_pg()
    name = f"nanobot_test_{secrets.token_hex(6)}"
    engine = _admin_engine()
    quoted = engine.dialect.identifier_preparer.quote(name)
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f"CREATE DATABASE {quoted}"))
        try:
            yield f"{PG_SERVER}/{name}"
        finally:
            await _drop(engine, name)
    finally:
        await engine.dispose()


@asynccontextmanager
async def temp_database(kind: str, sqlite_file: Path) -> AsyncIterator[str]:
    """An empty database URL of either kind: the SQLite file given, or a fresh PostgreSQL database."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{sqlite_file}"
        return
    async with temp_pg_database() as url:
        yield url
