"""Progress messages: a job's place in the queue, or its running time with a bar of the typical
duration, and ❌ Cancel. Slash commands show it in their "thinking…" message; a refine started by a
reply gets a progress reply of its own (ReplyProgress)."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import discord

from bot.i18n import t
from bot.jobs.spec import DISCORD_FILE_LIMIT
from bot.jobs.supervisor import Progress
from bot.ui.buttons import cancel_view
from bot.ui.preview import PreviewBoard

log = logging.getLogger(__name__)

#: Cells of the progress bar.
BAR_CELLS = 10
#: The most a bar claims before the result is in: a job past its typical time is not done yet.
BAR_CAP = 95
FILLED, EMPTY = "▰", "▱"


def bar(elapsed: float, expected: float | None) -> tuple[str, int] | None:
    """(cells, percent) of elapsed against the typical duration, never full; None without one."""
    if not expected or expected <= 0:
        return None
    percent = max(0, min(BAR_CAP, int(100 * elapsed / expected)))
    filled = percent * BAR_CELLS // 100
    return FILLED * filled + EMPTY * (BAR_CELLS - filled), percent


def progress_text(progress: Progress, board: PreviewBoard, locale: str | None) -> str:
    """What the progress message says, in the locale's language (a preview's report carries no
    typical duration: the last one known is kept on the board)."""
    if progress.state == "ready":
        return t(locale, "progress.ready")
    if progress.state == "queued":
        if progress.eta is None:
            return t(locale, "progress.queued", position=progress.position)
        return t(locale, "progress.queued.eta", position=progress.position, seconds=f"{progress.eta:.0f}")
    if progress.expected is not None:
        board.expected = progress.expected
    lines = [t(locale, "progress.running", provider=progress.provider, seconds=f"{progress.elapsed:.0f}")]
    if (shown := bar(progress.elapsed, board.expected)) is not None:
        cells, percent = shown
        lines.append(t(locale, "progress.bar", bar=cells, percent=percent))
    if progress.charged:
        lines.append(t(locale, "progress.charged"))
    return "\n".join(lines)


def progress_update(
    progress: Progress, board: PreviewBoard, locale: str | None, size_limit: int
) -> dict[str, Any] | None:
    """The edit of a progress message for this report (content, Cancel, a preview); None when a
    preview came too soon after the last (it waits for the next report)."""
    text = progress_text(progress, board, locale)
    if progress.state == "ready":  # nothing left to cancel: no button
        return {"content": text, "view": None}
    extra: dict[str, Any] = {}
    if progress.state == "running":
        if (attached := board.attachments(progress, size_limit)) is None:
            return None
        extra, text = attached, text + board.summary_line()
    return {
        "content": text,
        "view": cancel_view(progress.job_id, charged=progress.charged, locale=locale),
        **extra,
    }


class ReplyProgress:
    """The progress reply to a member's message: posted at the job's first report (a job done by
    then posts none), edited at each report after, and removed or turned into the error at the end.

    Reports come at the supervisor's interval, previews at most every PREVIEW_INTERVAL, as for
    slash commands. Every edit runs under the board's lock; once closed, none follows."""

    def __init__(self, message: discord.Message, locale: str) -> None:
        self.message = message
        self.locale = locale
        self.board = PreviewBoard()
        #: The progress reply, once posted.
        self.posted: discord.Message | None = None

    @property
    def size_limit(self) -> int:
        """How large a preview may be here."""
        guild = self.message.guild
        return guild.filesize_limit if guild is not None else DISCORD_FILE_LIMIT

    async def report(self, progress: Progress) -> None:
        """Show where the job stands (the first report posts the reply, without pinging)."""
        async with self.board.lock:
            if self.board.closed:
                return
            update = progress_update(progress, self.board, self.locale, self.size_limit)
            if update is None:
                return
            if self.posted is not None:
                try:
                    await self.posted.edit(**update)
                except discord.NotFound:  # someone deleted it: no more progress, and no error on it
                    self.board.closed, self.posted = True, None
                return
            files = update.pop("attachments", [])
            try:
                self.posted = await self.message.reply(**update, files=files, mention_author=False)
            except discord.HTTPException as e:  # the message is gone, or we may not post here:
                self.board.closed = True  # no retry at every report (each refusal counts at Discord)
                log.info("no progress reply to message %s: %s", self.message.id, e.status)

    async def close(self) -> None:
        """No progress edit may follow (one under way finishes first)."""
        self.board.closed = True
        async with self.board.lock:
            pass

    async def remove(self) -> None:
        """The result is posted: the progress reply goes (best effort: a stale one is harmless)."""
        await self.close()
        if self.posted is None:
            return
        try:
            await self.posted.delete()
        except discord.HTTPException as e:
            log.info("could not remove the progress reply %s: %s", self.posted.id, e)

    async def show(self, embed: discord.Embed) -> bool:
        """Turn the progress reply into this (an error); False when there is none to turn."""
        await self.close()
        if self.posted is None:
            return False
        with contextlib.suppress(discord.HTTPException):
            await self.posted.edit(content=None, embed=embed, attachments=[], view=None)
            return True
        return False
