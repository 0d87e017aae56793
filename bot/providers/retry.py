"""One retry policy for provider calls, on tenacity: bounded tries and time, jittered backoff, hints first.

Every retrying call site (API requests, image downloads, task creation) goes through `run`, so the
bounds are the same everywhere: at most `attempts` tries; no wait that would end past `total_seconds`
after the first try began; waits grow from `base_delay` (doubling, capped at `max_delay`, +-25 %
jitter so clients rate limited together do not come back together) unless the server said how long to
wait (`Retry-After`, Gemini's `RetryInfo.retryDelay`, carried as `RateLimited.retry_after`), which wins.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.stop import stop_base
from tenacity.wait import wait_base, wait_exponential

from bot.config import Settings
from bot.errors import ProviderError, RateLimited
from bot.providers.telemetry import NO_TELEMETRY, Telemetry

log = logging.getLogger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]
#: Decides whether a failure is worth another attempt.
RetryOn = Callable[[BaseException], bool]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try: attempts, a total time budget and the base of the exponential backoff."""

    attempts: int = 3
    total_seconds: float = 120.0
    base_delay: float = 1.0
    max_delay: float = 30.0
    #: How to wait and what time it is; a test swaps both to record the waits on a virtual clock.
    sleep: Sleep = field(default=asyncio.sleep, repr=False, compare=False)
    clock: Clock = field(default=time.monotonic, repr=False, compare=False)
    #: Where attempts are reported: each retry here, each HTTP exchange's time by the HTTP client.
    telemetry: Telemetry = field(default=NO_TELEMETRY, repr=False, compare=False)

    @classmethod
    def from_settings(cls, settings: Settings, telemetry: Telemetry = NO_TELEMETRY) -> RetryPolicy:
        """The bounds from RETRY_ATTEMPTS, RETRY_TOTAL_SECONDS and RETRY_BASE_DELAY."""
        return cls(
            attempts=settings.retry_attempts,
            total_seconds=settings.retry_total_seconds,
            base_delay=settings.retry_base_delay,
            telemetry=telemetry,
        )

    def single(self) -> RetryPolicy:
        """The same policy with no second attempt (for a caller that retries on its own terms)."""
        return replace(self, attempts=1)


class Retryable(Exception):
    """A failure worth another attempt, carrying the typed error to raise when none is left."""

    def __init__(self, error: ProviderError, cause: BaseException | None) -> None:
        super().__init__(error.message)
        self.error = error
        self.cause = cause


def unwrap(error: BaseException | None) -> BaseException | None:
    """The typed error inside a Retryable (any other error as it is)."""
    return error.error if isinstance(error, Retryable) else error


def transient(error: BaseException) -> bool:
    """Whether the HTTP client marked the failure retryable (a retryable status or a lost connection)."""
    return isinstance(error, Retryable)


def rate_limited(error: BaseException) -> bool:
    """Only a rate limit: for a request whose other failures may already have had an effect."""
    return isinstance(unwrap(error), RateLimited)


def server_hint(error: BaseException | None) -> float | None:
    """The wait the server asked for (Retry-After, retryDelay), when it gave one."""
    inner = unwrap(error)
    return inner.retry_after if isinstance(inner, RateLimited) else None


class JitteredBackoff(wait_base):
    """base_delay * 2**(attempt-1), capped at max_delay, scaled by a random factor in [0.75, 1.25)."""

    def __init__(self, policy: RetryPolicy, rand: Callable[[], float] = random.random) -> None:
        self._exponential = wait_exponential(multiplier=policy.base_delay, max=policy.max_delay)
        self._rand = rand

    def __call__(self, retry_state: RetryCallState) -> float:
        """The jittered wait after the attempt that just failed."""
        return float(self._exponential(retry_state)) * (0.75 + self._rand() / 2)


class ServerHintFirst(wait_base):
    """The server's own wait when the failure carries one (uncapped: the budget bounds it), else backoff."""

    def __init__(self, backoff: wait_base) -> None:
        self._backoff = backoff

    def __call__(self, retry_state: RetryCallState) -> float:
        """The hinted wait, or the backoff's."""
        outcome = retry_state.outcome
        hint = server_hint(outcome.exception() if outcome is not None else None)
        return hint if hint is not None else self._backoff(retry_state)


class OverBudget(stop_base):
    """Stops when the next wait would end past the budget: a retry never waits beyond it.

    Time is counted from this object's creation on the policy's clock (tenacity's own start time is
    always the real monotonic clock), so make one per call.
    """

    def __init__(self, budget: float, clock: Clock) -> None:
        self._budget = budget
        self._clock = clock
        self._started = clock()

    def __call__(self, retry_state: RetryCallState) -> bool:
        """True when elapsed time plus the upcoming wait passes the budget."""
        return self._clock() - self._started + retry_state.upcoming_sleep > self._budget


def retrying(policy: RetryPolicy, *, provider: str, retry_on: RetryOn = transient) -> AsyncRetrying:
    """A fresh tenacity controller for one call: attempts, budget, hint-first waits, a log line a retry."""
    return AsyncRetrying(
        stop=stop_after_attempt(policy.attempts) | OverBudget(policy.total_seconds, policy.clock),
        wait=ServerHintFirst(JitteredBackoff(policy)),
        retry=retry_if_exception(retry_on),
        sleep=policy.sleep,
        before_sleep=_before_retry(provider, policy.telemetry),
        reraise=True,  # the last failure itself, never tenacity's RetryError
    )


async def run(
    policy: RetryPolicy, call: Callable[[], Awaitable[T]], *, provider: str, retry_on: RetryOn = transient
) -> T:
    """Await call() under the policy; when no attempt is left its failure leaves as the typed error."""
    try:
        async for attempt in retrying(policy, provider=provider, retry_on=retry_on):
            with attempt:
                return await call()
    except Retryable as e:
        raise e.error from e.cause
    raise AssertionError("tenacity ends with a result or an error")  # pragma: no cover


def _before_retry(provider: str, telemetry: Telemetry) -> Callable[[RetryCallState], None]:
    """Before each wait: count the retry and log provider, error class, attempt number and the wait."""

    def before_sleep(retry_state: RetryCallState) -> None:
        outcome = retry_state.outcome
        error = unwrap(outcome.exception() if outcome is not None else None)
        telemetry.retried(provider)
        log.info(
            "%s: %s, retry %d in %.1fs",
            provider,
            type(error).__name__,
            retry_state.attempt_number,
            retry_state.upcoming_sleep,
        )

    return before_sleep
