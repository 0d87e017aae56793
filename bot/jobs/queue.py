"""The job queue: members take turns, each member's jobs start in the order sent, within the limits.

Three limits decide when a waiting job starts: the process's safety valve (MAX_RUNNING_JOBS), its
provider's `concurrency`, and the member's jobs at once (`jobs_at_once`). Waiting jobs form one line
per member; a slot that frees goes to the waiting member running the fewest jobs (ties: the one
served longest ago, round-robin), so one member's fifty queued jobs never hold back another's first.
Positions and estimates follow that same order.

A job takes its place in its member's line the moment the service sees it (`hold`), ordered by when
it was sent (its Discord id), and may start only once admitted (`enqueue`): a job still being
checked keeps the member's later jobs behind it, so they start in the order sent even when their
checks finish in another order.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import heapq
import itertools
import math
import statistics
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

from bot.errors import Refused
from bot.i18n import Text

RECENT = 20
DEFAULT_DURATION = 20.0
#: A member's jobs at once when nobody set a limit (the queue then only keeps their order).
UNLIMITED = 1_000_000
#: Discord ids hold the milliseconds since this moment (2015-01-01 UTC) above their lowest 22 bits.
DISCORD_EPOCH_MS = 1_420_070_400_000


def now_snowflake() -> int:
    """An id that sorts like a Discord id made now (for jobs that arrive without one)."""
    return (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22


@dataclass(eq=False)
class Ticket:
    """One job's place: waiting (future pending) until granted a slot."""

    job_id: str
    user_id: int
    provider: str
    #: How many of this member's jobs may run at once (their server's jobs_at_once).
    user_limit: int = UNLIMITED
    granted: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    started: float = 0.0
    #: Its order in the member's line: when it was sent, then when it arrived.
    order: tuple[int, int] = (0, 0)
    #: Admitted (quota reserved, provider decided): it may start when its turn comes.
    ready: bool = False
    released: bool = False


class JobQueue:
    """Admits jobs fairly across members, in order within each member, within every limit."""

    def __init__(self, *, global_limit: int, provider_limits: dict[str, int], per_user_queued: int) -> None:
        self.global_limit = global_limit
        self.provider_limits = provider_limits
        self.per_user_queued = per_user_queued
        #: Each member's waiting jobs, oldest first.
        self._lines: dict[int, deque[Ticket]] = {}
        #: When each member with jobs in the queue was last given a slot (a serial number).
        self._served: dict[int, int] = {}
        self._granted_count = 0
        self._running: dict[str, int] = {}
        self._user_running: dict[int, int] = {}
        self._holding: set[Ticket] = set()
        self._total = 0
        self._durations: dict[str, deque[float]] = {}
        self._ids = itertools.count(1)
        self._arrivals = itertools.count()
        self._places_cache: dict[str, tuple[int, Ticket]] | None = None
        self._stopped = False

    def next_id(self) -> str:
        """A short id for a new job (used in the Cancel button)."""
        return f"{int(time.time()) % 100_000:05d}{next(self._ids)}"

    @property
    def depth(self) -> int:
        """Jobs waiting for a slot."""
        return sum(len(line) for line in self._lines.values())

    @property
    def running(self) -> int:
        """Jobs holding a slot."""
        return self._total

    def granted_tickets(self) -> list[Ticket]:
        """Every ticket holding a slot now."""
        return list(self._holding)

    def running_for(self, user_id: int) -> int:
        """This member's jobs holding a slot."""
        return self._user_running.get(user_id, 0)

    def waiting_for(self, user_id: int) -> int:
        """This member's jobs waiting for a slot."""
        return len(self._lines.get(user_id, ()))

    def _priority(self, user_id: int) -> tuple[int, int]:
        """Who goes first: the member running the fewest jobs, then the one served longest ago."""
        return self.running_for(user_id), self._served.get(user_id, -1)

    def _order(self) -> Iterator[Ticket]:
        """The waiting jobs in the order they will be offered a slot (as _next chooses, supposing no
        job finishes meanwhile)."""
        heap = [(*self._priority(user), user, 0) for user in self._lines]
        heapq.heapify(heap)
        later = itertools.count(self._granted_count)  # serials of the grants this supposes
        while heap:
            load, _, user, depth = heapq.heappop(heap)
            line = self._lines[user]
            yield line[depth]
            if depth + 1 < len(line):
                heapq.heappush(heap, (load + 1, next(later), user, depth + 1))

    def _places(self) -> dict[str, tuple[int, Ticket]]:
        """job id → (1-based place, ticket) of every waiting job, worked out once per queue change
        (every waiting job asks for its place at each progress update)."""
        if self._places_cache is None:
            self._places_cache = {t.job_id: (n, t) for n, t in enumerate(self._order(), 1)}
        return self._places_cache

    def position(self, job_id: str) -> int | None:
        """1-based place among the waiting jobs (in the order they will start), or None when not waiting."""
        found = self._places().get(job_id)
        return found[0] if found else None

    def estimate(self, job_id: str) -> float | None:
        """Seconds until the job is likely to start, from recent durations and every limit in its way."""
        found = self._places().get(job_id)
        if found is None:
            return None
        place, ticket = found
        width = min(self.global_limit, self.provider_limits.get(ticket.provider, self.global_limit))
        own = self._lines[ticket.user_id].index(ticket) + 1  # this member's jobs up to this one
        rounds = max(math.ceil(place / max(1, width)), math.ceil(own / max(1, ticket.user_limit)))
        return rounds * self.average(ticket.provider)

    def average(self, provider: str) -> float:
        """Mean duration of the provider's recent jobs (a default before any)."""
        recent = self._durations.get(provider)
        return sum(recent) / len(recent) if recent else DEFAULT_DURATION

    def typical(self, provider: str) -> float | None:
        """Median duration of the provider's recent jobs (None before any: nothing learned yet).
        The median, so that one job that hung in a retry does not stretch everyone's bar."""
        recent = self._durations.get(provider)
        return statistics.median(recent) if recent else None

    def _fits(self, ticket: Ticket) -> bool:
        """Whether this job may start now: room in the process, its provider and its member's share."""
        limit = self.provider_limits.get(ticket.provider, self.global_limit)
        return (
            self._total < self.global_limit
            and self._running.get(ticket.provider, 0) < limit
            and self.running_for(ticket.user_id) < ticket.user_limit
        )

    def _grant(self, ticket: Ticket) -> None:
        """Give a ticket its slot."""
        self._total += 1
        self._served[ticket.user_id] = self._granted_count
        self._granted_count += 1
        self._holding.add(ticket)
        self._running[ticket.provider] = self._running.get(ticket.provider, 0) + 1
        self._user_running[ticket.user_id] = self.running_for(ticket.user_id) + 1
        ticket.started = time.monotonic()
        if not ticket.granted.done():
            ticket.granted.set_result(None)

    def _next(self) -> Ticket | None:
        """The job to start now: the oldest waiting job of the first member by _priority whose
        oldest job may start; it leaves the line."""
        startable = [
            (*self._priority(user), user)
            for user, line in self._lines.items()
            if line[0].ready and self._fits(line[0])
        ]
        if not startable:
            return None
        user = min(startable)[-1]
        ticket = self._lines[user].popleft()
        if not self._lines[user]:
            del self._lines[user]
        return ticket

    def stop(self) -> None:
        """Start nothing more (the bot is shutting down: a job started now would be billed by its
        provider and then abandoned); the waiting jobs are refunded and told at the end of the grace."""
        self._stopped = True

    def _pump(self) -> None:
        """Start waiting jobs while any may start (members in turn; each member's in order)."""
        self._places_cache = None  # called after every change: places are worked out afresh
        if self._stopped:
            return
        while self._total < self.global_limit and (ticket := self._next()) is not None:
            self._grant(ticket)

    def hold(self, job_id: str, user_id: int, sent_at: int = 0) -> Ticket:
        """A place in the member's line, in the order sent, that cannot start until admitted."""
        order = (sent_at or now_snowflake(), next(self._arrivals))
        ticket = Ticket(job_id, user_id, "", order=order)
        line = self._lines.setdefault(user_id, deque())
        line.insert(bisect.bisect(line, order, key=lambda t: t.order), ticket)
        self._places_cache = None
        return ticket

    def admit(self, ticket: Ticket, provider: str, *, user_limit: int = UNLIMITED) -> None:
        """The held job was admitted: it starts now if it may, else waits its turn; refused (and out
        of the line) when the member already has their share of jobs waiting."""
        if ticket.released:
            raise RuntimeError(f"job {ticket.job_id} has left the queue")
        if self._waiting_ready(ticket.user_id) >= self.per_user_queued:
            self.release(ticket, finished=False)
            raise Refused(Text("rules.queue.title"), Text("jobs.queue.waiting", count=self.per_user_queued))
        ticket.provider, ticket.user_limit, ticket.ready = provider, max(1, user_limit), True
        self._pump()

    def enqueue(self, job_id: str, user_id: int, provider: str, *, user_limit: int = UNLIMITED) -> Ticket:
        """Hold a place and admit it at once (started now when there is room)."""
        ticket = self.hold(job_id, user_id)
        self.admit(ticket, provider, user_limit=user_limit)
        return ticket

    def _waiting_ready(self, user_id: int) -> int:
        """This member's admitted jobs still waiting for a slot."""
        return sum(1 for t in self._lines.get(user_id, ()) if t.ready)

    def _leave(self, ticket: Ticket) -> bool:
        """Take a waiting ticket out of its member's line; whether it was waiting."""
        line = self._lines.get(ticket.user_id)
        if line is None or ticket not in line:
            return False
        line.remove(ticket)
        if not line:
            del self._lines[ticket.user_id]
        return True

    def release(self, ticket: Ticket, *, finished: bool) -> None:
        """Leave the queue or free the slot (once); successful runs feed the estimate."""
        if ticket.released:
            return
        ticket.released = True
        if not self._leave(ticket) and ticket.granted.done() and not ticket.granted.cancelled():
            self._total -= 1
            self._holding.discard(ticket)
            self._running[ticket.provider] -= 1
            self._user_running[ticket.user_id] -= 1
            if not self._user_running[ticket.user_id]:
                del self._user_running[ticket.user_id]
            if finished:
                recent = self._durations.setdefault(ticket.provider, deque(maxlen=RECENT))
                recent.append(time.monotonic() - ticket.started)
        if ticket.user_id not in self._lines and ticket.user_id not in self._user_running:
            self._served.pop(ticket.user_id, None)  # gone from the queue: nothing to remember
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
