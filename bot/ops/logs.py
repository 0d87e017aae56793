"""Logging for `python -m bot`: one event per line (text or JSON), so log shippers never split one."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Literal

from pythonjsonlogger.json import JsonFormatter

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
LogFormat = Literal["text", "json"]


class OneLineFormatter(logging.Formatter):
    """The usual format, with newlines inside a message or a traceback written as `\\n`."""

    def format(self, record: logging.LogRecord) -> str:
        """One line: the message, then the traceback (if any), newlines escaped."""
        text = super().format(record)
        return text.replace("\r", "").replace("\n", "\\n")


def json_formatter() -> logging.Formatter:
    """One JSON object per event: time (ISO 8601, UTC), level, logger, message, and exc_info if any."""
    return JsonFormatter(
        ["levelname", "name", "message"],
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",
    )


def level_name(value: str) -> str:
    """A logging level's name in upper case; a ValueError naming the choices otherwise."""
    name = value.strip().upper()
    if name not in LEVELS:
        raise ValueError(f"unknown log level {value.strip()!r}; use one of {', '.join(LEVELS)}")
    return name


def parse_levels(text: str) -> dict[str, str]:
    """Per-logger levels written `discord=WARNING,bot.providers=DEBUG`, as {logger: level}."""
    levels: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, level = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"{item!r} is not logger=LEVEL (e.g. discord=WARNING,bot.providers=DEBUG)")
        levels[name.strip()] = level
    return levels


def configure(
    level: int | str, *, fmt: LogFormat = "text", levels: Mapping[str, int | str] | None = None
) -> None:
    """Log to stderr at this level, one line per event, with these loggers at their own levels."""
    handler = logging.StreamHandler()
    handler.setFormatter(json_formatter() if fmt == "json" else OneLineFormatter(FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name, own in (levels or {}).items():
        logging.getLogger(name).setLevel(own)


#: Log values written as they are; anything else is quoted and escaped (no forged records).
PLAIN_VALUE = re.compile(r"[\w.:/@+-]{1,200}")


def log_value(value: object) -> str:
    """A value for a key=value log line: plain when safe, else JSON-quoted (newlines escaped)."""
    text = str(value)
    return text if PLAIN_VALUE.fullmatch(text) else json.dumps(text, ensure_ascii=True)
