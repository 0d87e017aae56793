"""Alembic environment: runs on the connection bot.storage.db hands over (no alembic.ini, no logging)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from alembic import context
from alembic.runtime.migration import MigrationContext, MigrationInfo
from sqlalchemy import Connection

from bot.errors import ConfigError
from bot.storage.tables import metadata

#: Rows of PRAGMA foreign_key_check quoted in the error.
SHOWN_VIOLATIONS = 5


def run_offline() -> None:
    """Emit SQL for the configured URL instead of running it (`alembic upgrade --sql`)."""
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def check_foreign_keys(
    ctx: MigrationContext, step: MigrationInfo, heads: Collection[Any], run_args: Mapping[str, Any]
) -> None:
    """Refuse to commit a SQLite migration that left rows pointing nowhere.

    The migration connection runs with foreign keys off (so a batch table copy cannot cascade), which
    means SQLite checks them only when asked: here, inside the migration's transaction.
    """
    assert ctx.connection is not None
    rows = ctx.connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if rows:
        shown = ", ".join(f"{row[0]} row {row[1]} -> {row[2]}" for row in rows[:SHOWN_VIOLATIONS])
        raise ConfigError(
            f"migration {step.up_revision_id} left {len(rows)} rows breaking foreign keys ({shown}); "
            "it was rolled back"
        )


def configure_online(connection: Connection) -> None:
    """Each migration in its own transaction, on SQLite too.

    Alembic assumes SQLite has no transactional DDL because Python's sqlite3 commits DDL on its own;
    bot.storage.db migrates SQLite on a connection set up so that it does not, so say so here. On
    PostgreSQL the caller's transaction (holding the advisory lock) encloses the whole upgrade, and
    Alembic runs inside it.
    """
    sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=sqlite,
        transactional_ddl=True,
        transaction_per_migration=True,
        on_version_apply=check_foreign_keys if sqlite else None,
    )


def run_online() -> None:
    """Migrate on the connection bot.storage.migrate.upgrade() put in config.attributes."""
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through bot.storage.migrate.upgrade() (python -m bot db upgrade)")
    configure_online(connection)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
