"""A member's results in the order sent: a result that is ready early waits for the earlier ones."""

from __future__ import annotations

import asyncio

from bot.jobs.ordering import DeliveryOrder


async def test_a_later_result_waits_until_every_earlier_one_has_left() -> None:
    order = DeliveryOrder()
    first, second, third = (order.enter(7, sent_at=n << 22) for n in (1, 2, 3))
    other = order.enter(8, sent_at=1 << 22)
    await asyncio.wait_for(order.turn(other), 1)  # another member is never held up
    waiting = asyncio.ensure_future(order.turn(third))
    await asyncio.sleep(0)
    assert not waiting.done()
    order.leave(second)  # e.g. it failed: it leaves without posting
    await asyncio.sleep(0)
    assert not waiting.done()  # the first is still to come
    order.leave(first)
    await asyncio.wait_for(waiting, 1)
    order.leave(third)
    assert order.waiting(7) == 0


async def test_the_order_is_the_order_sent_not_the_order_seen() -> None:
    order = DeliveryOrder()
    later = order.enter(7, sent_at=5 << 22)
    earlier = order.enter(7, sent_at=4 << 22)  # arrived second, but was sent first
    await asyncio.wait_for(order.turn(earlier), 1)
    turn = asyncio.ensure_future(order.turn(later))
    await asyncio.sleep(0)
    assert not turn.done()
    order.leave(earlier)
    await asyncio.wait_for(turn, 1)
    order.leave(later)
    order.leave(later)  # twice is harmless
    assert order.waiting(7) == 0
