"""Logs: text or JSON lines, per-logger levels, never a secret; wired into `python -m bot`."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from bot.config import Settings, load_settings
from bot.ops.logs import LogFormat, configure

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "tok-SECRET-b8e1"
KEY = "AIza-SECRET-44f0"
PASSWORD = "pw-SECRET-0c9d"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Give back the root handlers and every logger's level after the test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    names = ("noisy", "chatty", "chatty.child", "quiet", "secrets")
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, own in levels.items():
        logging.getLogger(name).setLevel(own)


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    """Settings holding a token, a Gemini key and a database password."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "none").mkdir()
    monkeypatch.setenv("SECRETS_DIR", str(tmp_path / "none"))
    monkeypatch.setenv("DISCORD_TOKEN", TOKEN)
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    monkeypatch.setenv("DATABASE_URL", f"postgresql+asyncpg://nanobot:{PASSWORD}@db/nanobot")
    monkeypatch.setenv("LOG_FORMAT", "json")
    monkeypatch.setenv("LOG_LEVELS", "noisy=WARNING,chatty=DEBUG")
    return load_settings()


def records(err: str) -> list[dict[str, object]]:
    """Each stderr line parsed as JSON (a line that is not JSON fails the test)."""
    return [json.loads(line) for line in err.splitlines()]


def test_json_lines_have_the_fields(capsys: pytest.CaptureFixture[str]) -> None:
    configure("INFO", fmt="json")
    log = logging.getLogger("quiet")
    log.info("hello %s\nsecond line", "world")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("it failed")
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 2  # one line per event, traceback included
    first, second = records(err)
    assert (first["level"], first["logger"], first["message"]) == (
        "INFO",
        "quiet",
        "hello world\nsecond line",
    )
    assert datetime.fromisoformat(str(first["time"])).tzinfo is not None
    assert "exc_info" not in first
    assert second["level"] == "ERROR" and "ValueError: boom" in str(second["exc_info"])


def test_no_secret_in_json_or_text_logs(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    formats: tuple[LogFormat, ...] = ("json", "text")
    for fmt in formats:
        configure("DEBUG", fmt=fmt)
        log = logging.getLogger("secrets")
        log.info("settings: %s / %r", settings, settings)
        log.info("extra fields too", extra={"settings": settings, "providers": settings.providers})
        log.info("the token %s and the url %s", settings.discord_token, settings.database_url)
        try:
            raise RuntimeError(f"cannot start with {settings!r}")
        except RuntimeError:
            log.exception("start failed")
        err = capsys.readouterr().err
        assert "start failed" in err and "**********" in err
        for value in (TOKEN, KEY, PASSWORD):
            assert value not in err, (fmt, value)


def test_per_logger_levels_apply(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    configure("INFO", fmt=settings.log_format, levels=settings.log_levels)
    logging.getLogger("noisy").info("dropped: below the logger's WARNING")
    logging.getLogger("noisy").warning("kept: noisy warning")
    logging.getLogger("chatty.child").debug("kept: chatty's DEBUG reaches its children")
    logging.getLogger("quiet").debug("dropped: below the root's INFO")
    logging.getLogger("quiet").info("kept: quiet info")
    messages = [r["message"] for r in records(capsys.readouterr().err)]
    assert messages == [
        "kept: noisy warning",
        "kept: chatty's DEBUG reaches its children",
        "kept: quiet info",
    ]


async def test_the_command_line_logs_json_at_the_levels_asked(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "GEMINI_", "NANOBOT_"))}
    env.update(
        PYTHONPATH=str(ROOT),
        DATA_DIR=str(tmp_path),
        SECRETS_DIR=str(tmp_path),
        LOG_FORMAT="json",
        LOG_LEVELS="alembic=INFO",  # `db upgrade` logs at WARNING, but this logger is asked for more
    )
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bot", "db", "upgrade"),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    lines = records(err.decode())
    assert lines and all(str(r["logger"]).startswith("alembic") and r["level"] == "INFO" for r in lines)
    assert any("Running upgrade" in str(r["message"]) for r in lines)
