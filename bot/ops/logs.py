"""Logging for `python -m bot`: one event per line, so log shippers never split a traceback."""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class OneLineFormatter(logging.Formatter):
    """The usual format, with newlines inside a message or a traceback written as `\\n`."""

    def format(self, record: logging.LogRecord) -> str:
        """One line: the message, then the traceback (if any), newlines escaped."""
        text = super().format(record)
        return text.replace("\r", "").replace("\n", "\\n")


def configure(level: int | str) -> None:
    """Log to stderr at this level, one line per event."""
    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter(FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
