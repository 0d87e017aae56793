"""The job queue: global and per-provider concurrency, FIFO order, positions and time estimates."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from bot.errors import Refused

RECENT = 20
DEFAULT_DURATION = 20.0


@dataclass(eq=False)
class Ticket:
    """One job's place: waiting (future pending) until granted a slot."""

    job_id: str
    user_id: int
    provider: str
    granted: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    started: float = 0.0


class JobQueue:
    """Admits jobs in arrival order within the global and per-provider limits."""

    def __init__(self, *, global_limit: int, provider_limits: dict[str, int], per_user_queued: int) -> None:
        self.global_limit = global_limit
        self.provider_limits = provider_limits
        self.per_user_queued = per_user_queued
        self._waiting: deque[Ticket] = deque()
        self._running: dict[str, int] = {}
        self._total = 0
        self._durations: dict[str, deque[float]] = {}
        self._ids = itertools.count(1)

    def next_id(self) -> str:
        """A short id for a new job (used in the Cancel button)."""
        return f"{int(time.time()) % 100_000:05d}{next(self._ids)}"

    @property
    def depth(self) -> int:
        """Jobs waiting for a slot."""
        return len(self._waiting)

    @property
    def running(self) -> int:
        """Jobs holding a slot."""
        return self._total

    def position(self, job_id: str) -> int | None:
        """1-based place among the waiting jobs, or None when not waiting."""
        for n, ticket in enumerate(self._waiting, 1):
            if ticket.job_id == job_id:
                return n
        return None

    def estimate(self, job_id: str) -> float | None:
        """Seconds until the job is likely to start, from recent durations."""
        place = self.position(job_id)
        if place is None:
            return None
        ticket = next(t for t in self._waiting if t.job_id == job_id)
        width = min(self.global_limit, self.provider_limits.get(ticket.provider, self.global_limit))
        return math.ceil(place / max(1, width)) * self.average(ticket.provider)

    def average(self, provider: str) -> float:
        """Mean duration of the provider's recent jobs (a default before any)."""
        recent = self._durations.get(provider)
        return sum(recent) / len(recent) if recent else DEFAULT_DURATION

    def _fits(self, provider: str) -> bool:
        """Whether a job for this provider may start now."""
        limit = self.provider_limits.get(provider, self.global_limit)
        return self._total < self.global_limit and self._running.get(provider, 0) < limit

    def _grant(self, ticket: Ticket) -> None:
        """Give a ticket its slot."""
        self._total += 1
        self._running[ticket.provider] = self._running.get(ticket.provider, 0) + 1
        ticket.started = time.monotonic()
        if not ticket.granted.done():
            ticket.granted.set_result(None)

    def _pump(self) -> None:
        """Start waiting jobs, in order, while their provider has room."""
        for ticket in list(self._waiting):
            if self._total >= self.global_limit:
                return
            if self._fits(ticket.provider):
                self._waiting.remove(ticket)
                self._grant(ticket)

    def enqueue(self, job_id: str, user_id: int, provider: str) -> Ticket:
        """Take a place in the queue (started at once when there is room); refuses past the user's cap."""
        ticket = Ticket(job_id, user_id, provider)
        if not self._waiting and self._fits(provider):
            self._grant(ticket)
            return ticket
        if sum(1 for t in self._waiting if t.user_id == user_id) >= self.per_user_queued:
            raise Refused(
                "⏳ Queue full", f"You already have {self.per_user_queued} jobs waiting; try again soon."
            )
        self._waiting.append(ticket)
        return ticket

    def release(self, ticket: Ticket, *, finished: bool) -> None:
        """Leave the queue or free the slot; successful runs feed the estimate."""
        if ticket in self._waiting:
            self._waiting.remove(ticket)
        elif ticket.granted.done() and not ticket.granted.cancelled():
            self._total -= 1
            self._running[ticket.provider] -= 1
            if finished:
                recent = self._durations.setdefault(ticket.provider, deque(maxlen=RECENT))
                recent.append(time.monotonic() - ticket.started)
        if not ticket.granted.done():
            ticket.granted.cancel()
        self._pump()

    @contextlib.asynccontextmanager
    async def slot(self, ticket: Ticket) -> AsyncIterator[None]:
        """Wait for the ticket's turn, hold the slot for the block, then free it."""
        finished = False
        try:
            await asyncio.shield(ticket.granted)
            yield
            finished = True
        finally:
            self.release(ticket, finished=finished)
