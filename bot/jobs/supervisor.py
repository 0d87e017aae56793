"""Runs admitted jobs through the queue, reports where they stand, and cancels them on request."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from bot.jobs.queue import UNLIMITED, JobQueue, Ticket
from bot.providers.base import Preview

log = logging.getLogger(__name__)
T = TypeVar("T")
#: Seconds a job waits before its message says "Queued" (most waits are over by then).
QUEUED_GRACE = 0.5


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a job stands: waiting (with its place and an estimate) or running (for how long, maybe
    with the model's latest interim image)."""

    job_id: str
    #: "ready": done, and posted as soon as the member's earlier results are.
    state: Literal["queued", "running", "ready"]
    provider: str
    position: int | None = None
    eta: float | None = None
    elapsed: float = 0.0
    #: The provider has the request: a cancel now stops the delivery but the job is charged.
    charged: bool = False
    #: A running job's interim "thought" image, as the model sent it (see GenerateRequest.on_preview).
    preview: Preview | None = None
    #: A running job's typical duration on its provider, learned from recent jobs (None: not yet).
    expected: float | None = None


ProgressHook = Callable[[Progress], Awaitable[None]]
#: "cancelled": nothing charged; "charged": cancelled after the provider started (the job is charged).
CancelOutcome = Literal["cancelled", "charged", "unknown", "not yours"]


@dataclass(slots=True)
class _Active:
    """A job in the queue or running, and the task to cancel it."""

    user_id: int
    task: asyncio.Task[object]
    sent: bool = False


class Supervisor:
    """The queue plus the registry of active jobs (for Cancel) and their progress reports."""

    def __init__(self, queue: JobQueue, *, interval: float) -> None:
        self.queue = queue
        self.interval = interval
        self._active: dict[str, _Active] = {}
        #: Jobs cancelled by a person (not by a shutdown), until their job has settled.
        self._cancelled: set[str] = set()

    def hold(self, job_id: str, user_id: int, sent_at: int = 0) -> Ticket:
        """The job's place in its member's line, taken before its checks (see JobQueue.hold)."""
        return self.queue.hold(job_id, user_id, sent_at)

    def drop(self, ticket: Ticket) -> None:
        """A held job that was refused or failed before it was admitted leaves the line."""
        self.queue.release(ticket, finished=False)

    async def run(
        self,
        ticket: Ticket,
        provider: str,
        report: ProgressHook | None,
        work: Callable[[], Awaitable[T]],
        *,
        user_limit: int = UNLIMITED,
    ) -> T:
        """Wait for a slot (reporting the position), then run `work` (reporting elapsed time).

        `user_limit` is how many of this member's jobs may run at once; the rest wait their turn.
        """
        self.queue.admit(ticket, provider, user_limit=user_limit)
        job_id, user_id = ticket.job_id, ticket.user_id
        task = asyncio.current_task()
        assert task is not None
        self._active[job_id] = _Active(user_id, task)
        try:
            try:
                waited = await self._wait_turn(ticket, report)
            except BaseException:  # cancelled while waiting: give the place (or a slot just granted) back
                self.queue.release(ticket, finished=False)
                raise
            async with self.queue.slot(ticket):
                ticker = asyncio.create_task(self._tick(ticket, report, now=waited)) if report else None
                try:
                    return await work()
                finally:
                    if ticker is not None:
                        ticker.cancel()
        finally:
            self._active.pop(job_id, None)

    async def _wait_turn(self, ticket: Ticket, report: ProgressHook | None) -> bool:
        """While the job waits, report its place every interval; whether a place was shown.

        The first report waits a moment: most waits end at once (a slot frees, or an earlier job of
        the member is refused as it is checked), and a "Queued" that flashes by only confuses.
        """
        shown = False
        delay = min(QUEUED_GRACE, self.interval)
        while not ticket.granted.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(ticket.granted), delay)
            if ticket.granted.done():
                break
            if report is not None:
                position = self.queue.position(ticket.job_id)
                eta = self.queue.estimate(ticket.job_id)
                await _safely(report, Progress(ticket.job_id, "queued", ticket.provider, position, eta))
                shown = True
            delay = self.interval
        return shown

    async def _tick(self, ticket: Ticket, report: ProgressHook | None, *, now: bool) -> None:
        """While the job runs, report its elapsed time every interval (at once when it had been shown
        as queued, so that its message never says "queued" while it runs)."""
        assert report is not None
        if not now:
            await asyncio.sleep(self.interval)
        while True:
            await self._report_running(ticket, report)
            await asyncio.sleep(self.interval)

    async def _report_running(self, ticket: Ticket, report: ProgressHook) -> None:
        """One running-time report (saying whether a cancel would still be free)."""
        active = self._active.get(ticket.job_id)
        elapsed = time.monotonic() - ticket.started
        progress = Progress(
            ticket.job_id,
            "running",
            ticket.provider,
            elapsed=elapsed,
            charged=bool(active and active.sent),
            expected=self.queue.typical(ticket.provider),
        )
        await _safely(report, progress)

    def mark_sent(self, job_id: str) -> None:
        """The job's request has gone to the provider: a cancel from now on is charged."""
        if (active := self._active.get(job_id)) is not None:
            active.sent = True

    def cancel(self, job_id: str, user_id: int, *, moderator: bool) -> CancelOutcome:
        """Cancel a queued or running job of this user (or anyone's, for moderators)."""
        active = self._active.get(job_id)
        if active is None:
            return "unknown"
        if active.user_id != user_id and not moderator:
            return "not yours"
        self._cancelled.add(job_id)
        active.task.cancel()
        return "charged" if active.sent else "cancelled"

    def cancelled_by_user(self, job_id: str) -> bool:
        """Whether a person cancelled this job (and forget it: asked once, as the job settles)."""
        if job_id in self._cancelled:
            self._cancelled.discard(job_id)
            return True
        return False


async def _safely(report: ProgressHook, progress: Progress) -> None:
    """Progress reports are best effort: a failed edit never fails the job."""
    try:
        await report(progress)
    except Exception:
        log.debug("progress report failed", exc_info=True)
