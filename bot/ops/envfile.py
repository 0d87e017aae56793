""".env.example, made from the settings model: every setting with its default and its description.

`python -m bot config env-example` prints it; a test keeps the file in the repository equal to it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from bot.config import Settings

#: The settings a minimal install needs, uncommented and empty to fill in (an empty value counts as
#: unset, so a copy left unfilled never hides the same secret given as a file).
REQUIRED = {"discord_token": "", "gemini_api_key": ""}

#: The other settings, grouped as an operator looks for them; a setting left out lands in "Other".
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "Discord",
        (
            "discord_api_base",
            "discord_gateway_url",
            "message_content_intent",
            "sync_guild_ids",
            "shard_count",
            "shard_ids",
            "interaction_token_lifetime",
        ),
    ),
    (
        "Providers (list them as [[providers]] in the TOML file, see nanobot.example.toml)",
        (
            "gemini_base_url",
            "providers",
            "request_timeout",
            "connect_timeout",
            "download_timeout",
            "retry_attempts",
            "retry_total_seconds",
            "retry_base_delay",
            "max_download_bytes",
            "max_response_bytes",
            "task_poll_interval",
            "task_deadline",
            "breaker_failures",
            "breaker_cooldown",
            "fallback_on_no_image",
        ),
    ),
    (
        "Storage",
        (
            "data_dir",
            "database_url",
            "blob_retention_days",
            "prompt_retention_days",
            "database_outage_seconds",
        ),
    ),
    (
        "Jobs and the queue",
        (
            "max_running_jobs",
            "max_queued_per_user",
            "max_concurrent_jobs",
            "progress_interval",
            "live_preview",
            "history_depth",
            "continue_policy",
            "show_policy",
            "max_input_bytes",
            "max_input_pixels",
            "image_url_hosts",
            "max_output_pixels",
        ),
    ),
    (
        "Costs, budgets and who may use the bot",
        (
            "costs",
            "operator_daily_budget",
            "allow_dms",
            "user_install",
            "dm_credits",
            "dm_window",
            "dm_cooldown",
            "blocklist",
            "blocked_users",
        ),
    ),
    (
        "Operations",
        (
            "log_level",
            "log_format",
            "log_levels",
            "health_port",
            "health_host",
            "instance_id",
            "shutdown_grace",
            "heartbeat_interval",
        ),
    ),
)

#: What to show for a setting that is unset by default (its description says what unset means).
EXAMPLES = {
    "discord_api_base": "http://proxy:8080/api/v10",
    "discord_gateway_url": "ws://proxy:8081",
    "sync_guild_ids": "[123456789012345678]",
    "shard_count": "4",
    "shard_ids": "[0,1]",
    # The PostgreSQL of docker-compose.yml (docker compose --profile postgres).
    "database_url": "postgresql+asyncpg://nanobot:nanobot@db/nanobot",
    "blob_retention_days": "90",
    "operator_daily_budget": "100",
    "blocklist": '["a phrase","another phrase"]',
    "blocked_users": "[123456789012345678]",
    "log_levels": "discord=WARNING,bot.providers=DEBUG",
    "health_port": "8080",
    "instance_id": "nanobot-1",
}

HEADER = """\
# Made by `python -m bot config env-example` from the settings (bot/config.py): every other
# setting below, commented out at its default (or an example, where it has none), with what it does.
# Settings come from the environment, then this file, then secret files, then the TOML file named
# by NANOBOT_CONFIG (default: ./nanobot.toml when present; see nanobot.example.toml).
#
# Secrets (DISCORD_TOKEN, GEMINI_API_KEY, DATABASE_URL and every provider key named by api_key_env)
# may come from files instead, as Docker and Kubernetes mount them:
#   NAME_FILE=/path/to/file    reads NAME from that file (set NAME or NAME_FILE, not both), e.g.
#   DISCORD_TOKEN_FILE=/run/secrets/discord_token
#   a file named like the setting in SECRETS_DIR (default: /run/secrets, when it exists) holds its
#   value, e.g. /run/secrets/gemini_api_key
# SECRETS_DIR=/run/secrets
# NANOBOT_CONFIG=nanobot.toml
"""


def _shown(value: Any) -> str:
    """A default as it is written in the environment."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Path):
        return value.as_posix() if value.is_absolute() else f"./{value.as_posix()}"
    if isinstance(value, BaseModel):  # a nested table: {} keeps its defaults
        return "{}"
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _value(name: str, field: FieldInfo) -> str:
    """The value on a setting's line: its default, or an example when it has none."""
    default = field.get_default(call_default_factory=True)
    if default is None or (default in ([], {}) and name in EXAMPLES):
        return EXAMPLES.get(name, "")
    return _shown(default)


def _description(name: str, field: FieldInfo) -> str:
    """A setting's one-line description (a missing one is a bug, caught here and by the tests)."""
    if not field.description:
        raise ValueError(f"setting {name} has no description (a docstring under it in bot/config.py)")
    return " ".join(field.description.split())


def groups() -> list[tuple[str, tuple[str, ...]]]:
    """The groups of settings, with an "Other" group for any setting no group names."""
    named = set(REQUIRED).union(*(names for _, names in GROUPS))
    rest = tuple(name for name in Settings.model_fields if name not in named)
    return [*GROUPS, ("Other", rest)] if rest else list(GROUPS)


def env_example() -> str:
    """The text of .env.example."""
    fields = Settings.model_fields
    lines = ["# The two settings a minimal install needs (or give them as files: see below):"]
    lines += [f"{name.upper()}={placeholder}" for name, placeholder in REQUIRED.items()]
    lines += [f"#   {name.upper()}: {_description(name, fields[name])}" for name in REQUIRED]
    lines += ["", *HEADER.splitlines()]
    for title, names in groups():
        lines += ["", f"# ---- {title} ".ljust(100, "-")]
        for name in names:
            field = fields[name]
            lines += ["", f"# {_description(name, field)}", f"# {name.upper()}={_value(name, field)}"]
    return "\n".join(lines) + "\n"


def write_env_example(path: str | Path) -> None:
    """Write .env.example to path."""
    Path(path).write_text(env_example(), encoding="utf-8")
