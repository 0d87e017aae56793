"""Live previews: a thinking model's interim images in the job's "thinking…" message.

At most one preview edit every PREVIEW_INTERVAL seconds (the latest image waits for the next update;
those in between are dropped), so a job never costs more edits than Discord's rate limits allow.
Once the result (or an error) replaces the message, no preview is shown: every progress edit runs
under the board's lock, and closing the board waits for an edit under way.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import discord

from bot.jobs.supervisor import Progress
from bot.providers.base import Preview
from bot.ui.types import Interaction

#: Seconds between two preview edits of one message.
PREVIEW_INTERVAL = 3.0
#: The longest thought summary shown.
MAX_SUMMARY = 200
_EXT = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
#: Where an interaction keeps its board (discord.py's extras: data of ours that lives with it).
_KEY = "nanobot_previews"


@dataclass(slots=True)
class PreviewBoard:
    """The previews of one job's progress message: the one waiting, when one was last shown, the
    summary shown, whether the message has been replaced by the result, and the typical duration."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pending: Preview | None = None
    shown_at: float | None = None
    summary: str | None = None
    closed: bool = False
    clock: Callable[[], float] = time.monotonic
    #: The job's typical duration as last reported (a preview's report carries none).
    expected: float | None = None

    def attachments(self, progress: Progress, size_limit: int) -> dict[str, Any] | None:
        """What this update attaches: the waiting preview once the interval has passed ({}: nothing
        new). None: a preview that came too soon after the last; it waits for the next update."""
        if progress.preview is not None:
            self.pending = progress.preview
        if self.pending is None:
            return {}
        now = self.clock()
        if self.shown_at is not None and now - self.shown_at < PREVIEW_INTERVAL:
            return None if progress.preview is not None else {}
        preview, self.pending, self.shown_at = self.pending, None, now
        self.summary = preview.summary or self.summary
        file = preview_file(preview, size_limit)
        return {"attachments": [file]} if file is not None else {}

    def summary_line(self) -> str:
        """The latest thought, as a line under the running time ("" before any)."""
        if not self.summary:
            return ""
        shown = discord.utils.escape_markdown(discord.utils.escape_mentions(self.summary[:MAX_SUMMARY]))
        return f"\n💭 {shown}"


def board_of(interaction: Interaction) -> PreviewBoard:
    """The interaction's preview board (made on first use)."""
    board = interaction.extras.get(_KEY)
    if not isinstance(board, PreviewBoard):
        board = interaction.extras[_KEY] = PreviewBoard()
    return board


async def close_previews(interaction: Interaction) -> None:
    """The result (or an error) takes over the progress message: no progress edit may follow, and
    one under way finishes first."""
    board = interaction.extras.get(_KEY)
    if isinstance(board, PreviewBoard):
        board.closed = True
        async with board.lock:
            pass


def preview_file(preview: Preview, size_limit: int) -> discord.File | None:
    """The interim image as an attachment (None when it is over the upload limit: text only then)."""
    image = preview.image
    if len(image.data) > size_limit:
        return None
    return discord.File(io.BytesIO(image.data), filename=f"preview.{_EXT.get(image.mime, 'png')}")
