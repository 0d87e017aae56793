"""Real settings for tests and the benchmark, pointed at the fakes, with short retries and timeouts."""

from __future__ import annotations

from typing import Any

from bot.config import Settings, load_settings

#: Settings that keep retries and timeouts short enough for tests.
FAST = {
    "retry_base_delay": 0.01,
    "retry_attempts": 3,
    "retry_total_seconds": 10.0,
    "request_timeout": 10.0,
    "task_poll_interval": 0.01,
    "task_deadline": 5.0,
    # Running-time updates would replace "thinking…" in slow tests; tests that want them set it.
    "progress_interval": 60.0,
    # Thought-image previews would edit "thinking…" too; tests that want them set it.
    "live_preview": False,
}


def make_settings(*providers: dict[str, Any], **overrides: Any) -> Settings:
    """Real settings (validated as from a TOML file) with the given provider entries."""
    return load_settings(env_file=None, providers=list(providers), **{**FAST, **overrides})
