"""Alembic environment: runs on the connection bot.storage.db hands over (no alembic.ini, no logging)."""

from __future__ import annotations

from alembic import context

from bot.storage.tables import metadata


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


def run_online() -> None:
    """Migrate on the connection bot.storage.db.upgrade() put in config.attributes."""
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through bot.storage.db.upgrade() (python -m bot db upgrade)")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
