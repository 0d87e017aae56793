"""A circuit breaker per provider: stop calling a provider that keeps failing, probe it after a pause."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

from bot.errors import AuthFailed, OutOfCredits, ProviderTimeout, ProviderUnavailable, RateLimited
from bot.i18n import Text

log = logging.getLogger(__name__)

T = TypeVar("T")
State = Literal["closed", "open", "half-open"]
Clock = Callable[[], float]

#: Failures that are the provider's fault. Safety blocks, image-less answers and bad requests are
#: the user's outcome: they say the provider is up, so they neither count nor reset the count.
PROVIDER_FAULTS = (ProviderUnavailable, ProviderTimeout, RateLimited, AuthFailed, OutOfCredits)


class CircuitOpen(ProviderUnavailable):
    """Raised without calling the provider while its breaker is open (no request is sent)."""

    metric_label = "circuit_open"


class Breaker:
    """Closed → (N consecutive faults) → open → (cooldown) → half-open: one probe decides."""

    def __init__(self, name: str, threshold: int, cooldown: float, clock: Clock = time.monotonic) -> None:
        self.name = name
        self.threshold = threshold
        self.cooldown = cooldown
        self.consecutive_failures = 0
        self._clock = clock
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> State:
        """closed, open (cooling down), or half-open (cooldown over: the next call is a probe)."""
        if self._opened_at is None:
            return "closed"
        return "open" if self.retry_in() > 0 else "half-open"

    def retry_in(self) -> float:
        """Seconds until the cooldown is over (0 when closed or already over)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._opened_at + self.cooldown - self._clock())

    def available(self) -> bool:
        """Whether a call would be let through now (closed, or half-open with no probe in flight)."""
        state = self.state
        return state == "closed" or (state == "half-open" and not self._probing)

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run fn unless the breaker is open; record how it went."""
        probe = self._admit()
        try:
            result = await fn()
        except PROVIDER_FAULTS:
            self._failed(probe)
            raise
        except BaseException:
            self._neutral(probe)
            raise
        self._succeeded(probe)
        return result

    def _admit(self) -> bool:
        """Let the call through (True when it is the half-open probe) or fail fast."""
        if not self.available():
            wait = max(1, math.ceil(self.retry_in()))
            raise CircuitOpen(Text("provider.paused", provider=self.name, seconds=wait), provider=self.name)
        if self.state == "half-open":
            self._probing = True
            return True
        return False

    def _succeeded(self, probe: bool) -> None:
        """A success (the probe's, or a late one from a call already in flight) closes the breaker."""
        if self._opened_at is not None:
            log.info("%s: answered again; calls resume", self.name)
        if probe:
            self._probing = False
        self.consecutive_failures = 0
        self._opened_at = None

    def _failed(self, probe: bool) -> None:
        """Count a fault; open at the threshold, re-open when the probe fails."""
        self.consecutive_failures += 1
        if probe:
            self._probing = False
            self._open("the probe failed")
        elif self._opened_at is None and self.consecutive_failures >= self.threshold:
            self._open(f"{self.consecutive_failures} consecutive failures")

    def _neutral(self, probe: bool) -> None:
        """A user outcome (or a cancel) leaves the count alone; a probe that ends so frees the slot."""
        if probe:
            self._probing = False

    def _open(self, why: str) -> None:
        """Stop calling the provider for the cooldown."""
        self._opened_at = self._clock()
        log.warning("%s: paused for %.0f s after %s", self.name, self.cooldown, why)
