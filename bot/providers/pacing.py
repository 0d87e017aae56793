"""Requests per minute: a provider's own rate limits (per provider and per key), split across processes.

aiolimiter's leaky bucket does the waiting: a job over the rate waits as a coroutine (it costs no
connection and no thread) instead of earning a 429. With several processes on one database each
takes its share: the rate divided by the live processes in the instances table, updated at each
maintenance round.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from contextvars import ContextVar

from aiolimiter import AsyncLimiter

#: Told when a request is about to leave for the provider, after any wait for the rate (the job's
#: "a cancel from now on is charged" moment); set around a provider call by the job that makes it.
ON_SEND: ContextVar[Callable[[], None] | None] = ContextVar("nanobot_on_send", default=None)


#: Set while a call says itself when its billed request leaves (the Files API's uploads come first,
#: and Google does not bill them: a cancel meanwhile is free).
_DEFERRED: ContextVar[bool] = ContextVar("nanobot_send_deferred", default=False)


def sending(*, billed: bool = False) -> None:
    """The request leaves now: tell whoever asked (nothing outside a job). Under deferred_send(),
    only the billed request itself (`billed=True`) tells."""
    if _DEFERRED.get() and not billed:
        return
    hook = ON_SEND.get()
    if hook is not None:
        hook()


@contextlib.contextmanager
def deferred_send() -> Iterator[None]:
    """Within: the key ring's attempts do not count as sent; the call says when (sending(billed=True))."""
    token = _DEFERRED.set(True)
    try:
        yield
    finally:
        _DEFERRED.reset(token)


#: aiolimiter measures rates over this many seconds.
MINUTE = 60.0


class Pacer:
    """The rate limits of one provider: all its requests, and each of its keys."""

    def __init__(self, per_provider: int | None = None, per_key: int | None = None, keys: int = 0) -> None:
        self.per_provider = per_provider
        self.per_key = per_key
        self.keys = keys
        self.processes = 1
        self._provider: AsyncLimiter | None = None
        self._keys: list[AsyncLimiter] = []
        self._build()

    def _limiter(self, per_minute: int | None) -> AsyncLimiter | None:
        """A bucket for this process's share of a rate (never below one request per minute).

        The bucket holds a tenth of a minute's requests and drains at the rate: a full bucket of
        `rate` per minute would let twice the rate through in the first minute (the burst, then the
        drain). Here any 60 s see at most the rate plus a tenth.
        """
        if per_minute is None:
            return None
        rate = max(1.0, per_minute / self.processes)
        burst = max(1.0, math.floor(rate / 10))
        return AsyncLimiter(burst, MINUTE * burst / rate)

    def _build(self) -> None:
        """Fresh buckets for the current share."""
        self._provider = self._limiter(self.per_provider)
        self._keys = [lim for _ in range(self.keys) if (lim := self._limiter(self.per_key)) is not None]

    def share(self, processes: int) -> None:
        """Take 1/processes of each limit (the other live processes take the rest)."""
        processes = max(1, processes)
        if processes != self.processes:
            self.processes = processes
            self._build()

    def has_capacity(self, key: int | None) -> bool:
        """Whether a request with this key would go out now without waiting."""
        limiters = [self._provider, self._keys[key] if self._keys and key is not None else None]
        return all(lim.has_capacity() for lim in limiters if lim is not None)

    async def wait(self, key: int | None) -> None:
        """Wait until a request with this key may go out, and count it."""
        if self._provider is not None:
            await self._provider.acquire()
        if self._keys and key is not None:
            await self._keys[key].acquire()


#: No limits: requests go out at once.
UNPACED = Pacer()
