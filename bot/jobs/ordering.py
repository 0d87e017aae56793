"""A member's results are posted in the order the jobs were sent.

Two of a member's jobs may run at once and finish in either order; the one that finishes first waits
(holding only its result) until the member's earlier jobs have been posted, have failed or were
cancelled. Failures and refusals are told at once: they never wait, and never hold anyone up.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
from dataclasses import dataclass, field

from bot.jobs.queue import now_snowflake
from bot.jobs.supervisor import Progress, ProgressHook


@dataclass(eq=False)
class Place:
    """One job's place among its member's results still to come."""

    user_id: int
    order: tuple[int, int]
    done: asyncio.Event = field(default_factory=asyncio.Event)


class DeliveryOrder:
    """Each member's jobs that have not been posted yet, in the order they were sent."""

    def __init__(self) -> None:
        self._lines: dict[int, list[Place]] = {}
        self._arrivals = itertools.count()

    def enter(self, user_id: int, sent_at: int = 0) -> Place:
        """Take the job's place (sent_at: its Discord id, which grows with time; 0: now)."""
        place = Place(user_id, (sent_at or now_snowflake(), next(self._arrivals)))
        line = self._lines.setdefault(user_id, [])
        line.insert(bisect.bisect(line, place.order, key=lambda p: p.order), place)
        return place

    async def turn(self, place: Place, report: ProgressHook | None = None, provider: str = "") -> None:
        """Wait until every earlier job of the member has left (posted, failed or cancelled); a job
        that must wait says it is ready (best effort: a failed report never holds it up)."""
        told = False
        while (line := self._lines.get(place.user_id)) and line[0] is not place:
            if report is not None and not told:
                told = True
                with contextlib.suppress(Exception):
                    await report(Progress("", "ready", provider))
                continue  # the line may have moved while the report was sent
            await line[0].done.wait()

    def leave(self, place: Place) -> None:
        """The job is posted, failed or cancelled: the member's next result may go."""
        line = self._lines.get(place.user_id, [])
        if place in line:
            line.remove(place)
            if not line:
                del self._lines[place.user_id]
        place.done.set()

    def waiting(self, user_id: int) -> int:
        """This member's jobs not posted yet."""
        return len(self._lines.get(user_id, ()))
