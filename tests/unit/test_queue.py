"""The job queue on its own: limits, arrival order, places, estimates, caps and leaving the queue."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.errors import Refused
from bot.jobs.queue import DEFAULT_DURATION, JobQueue, Ticket


def make_queue(global_limit: int = 1, per_user_queued: int = 10, **provider_limits: int) -> JobQueue:
    """A queue with the given limits."""
    return JobQueue(
        global_limit=global_limit, provider_limits=provider_limits, per_user_queued=per_user_queued
    )


def granted(*tickets: Ticket) -> list[bool]:
    """Whether each ticket holds a slot."""
    return [t.granted.done() and not t.granted.cancelled() for t in tickets]


async def test_jobs_start_at_once_up_to_the_global_limit() -> None:
    queue = make_queue(global_limit=2)
    a, b, c = (queue.enqueue(name, n, "google") for n, name in enumerate("abc"))
    assert granted(a, b, c) == [True, True, False]
    assert (queue.running, queue.depth) == (2, 1)
    assert queue.position("c") == 1
    assert queue.position("a") is None  # running, not waiting


async def test_a_provider_limit_holds_its_jobs_below_the_global_limit() -> None:
    queue = make_queue(global_limit=3, slow=1)
    a = queue.enqueue("a", 1, "slow")
    f = queue.enqueue("f", 2, "fast")
    b = queue.enqueue("b", 3, "slow")
    assert granted(a, f, b) == [True, True, False]
    queue.release(f, finished=True)
    assert granted(b) == [False]  # a fast slot came free, but slow is still at its limit
    queue.release(a, finished=True)
    assert granted(b) == [True]
    assert (queue.running, queue.depth) == (1, 0)


async def test_a_full_provider_does_not_hold_up_another_providers_jobs() -> None:
    queue = make_queue(global_limit=3, slow=1)
    queue.enqueue("a", 1, "slow")
    f = queue.enqueue("f", 2, "fast")
    b = queue.enqueue("b", 3, "slow")
    c = queue.enqueue("c", 4, "fast")
    queue.release(f, finished=True)
    assert granted(b, c) == [False, True]  # c passes b, whose provider is still full
    assert queue.position("b") == 1


async def test_waiting_jobs_start_in_arrival_order() -> None:
    queue = make_queue(global_limit=1)
    a, b, c, d = (queue.enqueue(name, n, "google") for n, name in enumerate("abcd"))
    assert [queue.position(x) for x in "bcd"] == [1, 2, 3]
    queue.release(a, finished=True)
    assert granted(b, c, d) == [True, False, False]
    assert [queue.position(x) for x in "cd"] == [1, 2]
    queue.release(b, finished=True)
    assert granted(c, d) == [True, False]
    assert queue.position("d") == 1


async def test_the_estimate_counts_rounds_of_the_lane_width() -> None:
    queue = make_queue(global_limit=4, google=2)
    for n, name in enumerate("ab"):
        queue.enqueue(name, n, "google")
    for n, name in enumerate("cde"):
        queue.enqueue(name, 10 + n, "google")
    # Two run at once on this lane: places 1-2 start after one round, place 3 after two.
    assert [queue.estimate(x) for x in "cde"] == [DEFAULT_DURATION, DEFAULT_DURATION, 2 * DEFAULT_DURATION]
    assert queue.estimate("a") is None
    assert queue.estimate("nobody") is None


async def test_finished_runs_feed_the_estimate_and_failed_ones_do_not() -> None:
    queue = make_queue(global_limit=1)
    a = queue.enqueue("a", 1, "google")
    b = queue.enqueue("b", 2, "google")
    queue.enqueue("c", 3, "google")
    a.started = time.monotonic() - 10.0  # as if it had run for ten seconds
    queue.release(a, finished=True)
    assert queue.average("google") == pytest.approx(10.0, abs=0.5)
    assert queue.estimate("c") == pytest.approx(10.0, abs=0.5)
    b.started = time.monotonic() - 100.0
    queue.release(b, finished=False)  # a failure says nothing about how long jobs take
    assert queue.average("google") == pytest.approx(10.0, abs=0.5)
    assert queue.average("other") == DEFAULT_DURATION


async def test_a_user_may_have_only_so_many_jobs_waiting() -> None:
    queue = make_queue(global_limit=1, per_user_queued=2)
    queue.enqueue("a", 7, "google")  # running: not counted against the cap
    queue.enqueue("b", 7, "google")
    queue.enqueue("c", 7, "google")
    with pytest.raises(Refused) as caught:
        queue.enqueue("d", 7, "google")
    assert (caught.value.title_text(), caught.value.message) == (
        "⏳ Queue full",
        "You already have 2 jobs waiting; try again soon.",
    )
    assert queue.position("d") is None
    queue.enqueue("e", 8, "google")  # another user still gets a place
    assert (queue.depth, queue.position("e")) == (3, 1)  # running nothing yet: first in line


async def test_a_waiting_job_that_leaves_frees_its_place_and_never_takes_a_slot() -> None:
    queue = make_queue(global_limit=1)
    a, b, c = (queue.enqueue(name, n, "google") for n, name in enumerate("abc"))
    queue.release(b, finished=False)  # cancelled while queued
    assert b.granted.cancelled()
    assert (queue.running, queue.depth, queue.position("c")) == (1, 1, 1)
    queue.release(a, finished=True)
    assert granted(c) == [True]
    assert (queue.running, queue.depth) == (1, 0)
    queue.release(c, finished=True)
    assert queue.running == 0


async def test_a_slot_is_held_for_the_block_then_handed_on() -> None:
    queue = make_queue(global_limit=1)
    a, b = queue.enqueue("a", 1, "google"), queue.enqueue("b", 2, "google")

    async def run_b() -> int:
        async with queue.slot(b):
            return queue.running

    waiting = asyncio.create_task(run_b())
    async with queue.slot(a):
        assert granted(b) == [False]
    assert granted(b) == [True]  # handed on as a's block ended
    assert await waiting == 1
    assert (queue.running, queue.depth) == (0, 0)


async def test_cancelling_a_job_waiting_for_its_slot_leaves_the_queue() -> None:
    queue = make_queue(global_limit=1)
    a, b = queue.enqueue("a", 1, "google"), queue.enqueue("b", 2, "google")
    entered = asyncio.Event()

    async def run_b() -> None:
        entered.set()
        async with queue.slot(b):
            raise AssertionError("a cancelled job must never run")

    waiting = asyncio.create_task(run_b())
    await entered.wait()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert (queue.depth, queue.position("b")) == (0, None)
    queue.release(a, finished=True)
    assert queue.running == 0  # b took no slot on the way out


async def test_a_job_that_fails_in_its_slot_frees_it() -> None:
    queue = make_queue(global_limit=1)
    a, b = queue.enqueue("a", 1, "google"), queue.enqueue("b", 2, "google")
    with pytest.raises(RuntimeError):
        async with queue.slot(a):
            raise RuntimeError("provider down")
    assert granted(b) == [True]
    assert queue.average("google") == DEFAULT_DURATION  # a failed run is not a duration


async def test_job_ids_are_unique() -> None:
    queue = make_queue()
    ids = {queue.next_id() for _ in range(100)}
    assert len(ids) == 100


# --- members take turns; a member's jobs start in the order sent ---------------------------------


async def test_a_members_backlog_never_holds_back_another_members_first_job() -> None:
    queue = make_queue(global_limit=1, per_user_queued=50)
    alice = [queue.enqueue(f"a{n}", 1, "google") for n in range(50)]
    bob = queue.enqueue("b0", 2, "google")
    assert granted(alice[0], alice[1], bob) == [True, False, False]
    assert queue.position("b0") == 1  # alice runs one already: bob goes next
    assert [queue.position(f"a{n}") for n in (1, 2)] == [2, 3]
    queue.release(alice[0], finished=True)
    assert granted(alice[1], bob) == [False, True]


async def test_members_take_turns_and_each_members_jobs_start_in_order() -> None:
    queue = make_queue(global_limit=1, per_user_queued=50)
    first = queue.enqueue("x", 9, "google")  # holds the only slot
    for n in range(3):
        queue.enqueue(f"a{n}", 1, "google")
        queue.enqueue(f"b{n}", 2, "google")
    started: list[str] = []
    running = first
    for _ in range(6):
        queue.release(running, finished=True)
        [running] = [t for t in queue_tickets(queue, started) if t.granted.done()]
        started.append(running.job_id)
    assert started == ["a0", "b0", "a1", "b1", "a2", "b2"]


def queue_tickets(queue: JobQueue, started: list[str]) -> list[Ticket]:
    """The tickets granted so far that have not been recorded as started (at most one here)."""
    return [t for t in queue.granted_tickets() if t.job_id not in started]


async def test_a_job_still_being_checked_keeps_the_members_later_jobs_behind_it() -> None:
    queue = make_queue(global_limit=5, per_user_queued=50)
    early = queue.hold("early", 1, sent_at=1000 << 22)  # sent first, its checks still running
    late = queue.hold("late", 1, sent_at=2000 << 22)
    queue.admit(late, "google", user_limit=1)
    assert granted(late) == [False]  # it waits for the job sent before it
    assert queue.position("late") == 2
    other = queue.enqueue("other", 2, "google", user_limit=1)
    assert granted(other) == [True]  # another member is not held up
    queue.admit(early, "google", user_limit=1)
    assert granted(early, late) == [True, False]  # jobs_at_once 1: late waits for early to finish
    queue.release(early, finished=True)
    assert granted(late) == [True]


async def test_a_held_job_that_is_refused_leaves_the_line() -> None:
    queue = make_queue(global_limit=5)
    refused = queue.hold("refused", 1, sent_at=1 << 22)
    later = queue.hold("later", 1, sent_at=2 << 22)
    queue.admit(later, "google")
    assert granted(later) == [False]
    queue.release(refused, finished=False)  # e.g. its quota was spent
    queue.release(refused, finished=False)  # twice is harmless
    assert granted(later) == [True] and queue.running == 1 and queue.depth == 0


async def test_a_members_running_share_is_kept() -> None:
    queue = make_queue(global_limit=10, per_user_queued=10)
    tickets = [queue.enqueue(f"a{n}", 1, "google", user_limit=2) for n in range(5)]
    assert granted(*tickets) == [True, True, False, False, False]
    # Rounds of this member's share of two: a2 and a3 start as a0 and a1 finish, a4 after that.
    assert [queue.estimate(f"a{n}") for n in (2, 3, 4)] == [DEFAULT_DURATION] * 2 + [2 * DEFAULT_DURATION]
    queue.release(tickets[0], finished=True)
    assert granted(*tickets[1:]) == [True, True, False, False]


async def test_the_estimate_learns_while_the_member_still_has_jobs_waiting() -> None:
    queue = make_queue(global_limit=1, per_user_queued=10)
    tickets = [queue.enqueue(f"a{n}", 1, "google") for n in range(3)]
    queue.release(tickets[0], finished=True)  # the member still has two jobs in the queue
    assert queue.average("google") < DEFAULT_DURATION  # learnt from the run that just ended


async def test_a_stopped_queue_starts_nothing_more() -> None:
    queue = make_queue(global_limit=1)
    running, waiting = queue.enqueue("a", 1, "google"), queue.enqueue("b", 2, "google")
    queue.stop()  # shutting down: the running job finishes, the waiting one must not reach a provider
    queue.release(running, finished=True)
    assert granted(waiting) == [False] and queue.running == 0
    assert granted(queue.enqueue("c", 3, "google")) == [False]
