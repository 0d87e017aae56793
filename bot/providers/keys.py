"""Several API keys per provider: use the first rested one, move on when a key is limited or refused."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from pydantic import SecretStr

from bot.errors import AuthFailed, NoImageReturned, ProviderError, RateLimited, SafetyBlocked
from bot.i18n import Text, Words
from bot.providers.pacing import UNPACED, Pacer, sending
from bot.providers.telemetry import NO_TELEMETRY, Telemetry

log = logging.getLogger(__name__)

T = TypeVar("T")
Clock = Callable[[], float]

#: Seconds a rate-limited key rests when the provider gave no Retry-After.
RATE_LIMIT_REST = 60.0
#: Seconds an exhausted (or refused) key rests before it is preferred again.
CREDITS_REST = 3600.0


class KeyRing:
    """A provider's keys in configured order; each remembers until when it rests."""

    def __init__(
        self,
        provider: str,
        keys: Sequence[SecretStr],
        clock: Clock = time.monotonic,
        telemetry: Telemetry = NO_TELEMETRY,
        pacer: Pacer = UNPACED,
    ) -> None:
        self.provider = provider
        self._keys = list(keys)
        #: The provider's requests-per-minute limits (all keys, and each key).
        self.pacer = pacer
        self._clock = clock
        #: Told each time a key is set aside (the bot's metrics, through the provider's HTTP client).
        self.telemetry = telemetry
        self._resting_until = [0.0] * len(self._keys)
        self._refused: set[int] = set()

    def __len__(self) -> int:
        """How many keys there are (0 for a keyless host)."""
        return len(self._keys)

    def label(self, index: int) -> str:
        """How a key is named in logs and messages: never its value."""
        return f"key #{index + 1} of {len(self._keys)}"

    def order(self) -> list[int]:
        """Key indexes to try: rested keys in configured order (those under their rate limit first),
        then resting ones, soonest back first."""
        now = self._clock()
        ready = [i for i, until in enumerate(self._resting_until) if until <= now]
        ready.sort(key=lambda i: not self.pacer.has_capacity(i))  # stable: configured order kept
        resting = sorted(set(range(len(self._keys))) - set(ready), key=lambda i: self._resting_until[i])
        return ready + resting

    @property
    def current(self) -> int | None:
        """The index of the key the next request starts with (None without keys)."""
        order = self.order()
        return order[0] if order else None

    async def run(self, call: Callable[[str | None], Awaitable[T]]) -> T:
        """Run call with the current key; on a key-level failure run it again with the next key."""
        if not self._keys:
            await self.pacer.wait(None)
            sending()
            return await call(None)
        order = self.order()
        for position, index in enumerate(order[:-1]):
            try:
                return await self._attempt(index, call)
            except ProviderError as e:
                if not e.rotates_key:  # the request's fault, not the key's: another key fares no better
                    raise
                following = self.label(order[position + 1])
                log.info(
                    "%s: %s failed (%s); trying %s",
                    self.provider,
                    self.label(index),
                    type(e).__name__,
                    following,
                )
        return await self._attempt(order[-1], call)

    async def _attempt(self, index: int, call: Callable[[str | None], Awaitable[T]]) -> T:
        """One try with one key: a key-level failure rests the key; no error leaves with a key in it."""
        await self.pacer.wait(index)  # within the provider's and the key's requests per minute
        sending()  # only now does the provider get (and bill) the request
        try:
            return await call(self._keys[index].get_secret_value())
        except ProviderError as e:
            if e.rotates_key:
                self._rest(index, e)
            self._redact(e)
            raise

    def _rest(self, index: int, error: ProviderError) -> None:
        """Set the key aside for a while; warn once when the provider refused it outright."""
        if isinstance(error, RateLimited):
            pause = error.retry_after if error.retry_after is not None else RATE_LIMIT_REST
        else:
            pause = CREDITS_REST
        self._resting_until[index] = self._clock() + pause
        self.telemetry.key_rested(self.provider)
        if isinstance(error, AuthFailed) and index not in self._refused:
            self._refused.add(index)
            log.warning("%s: %s was refused by the provider; check it", self.provider, self.label(index))

    def _redact(self, error: ProviderError) -> None:
        """Replace any key value a server echoed into the error by the key's label."""
        for index, key in enumerate(self._keys):
            secret, label = key.get_secret_value(), self.label(index)
            error.message = error.message.replace(secret, label)
            error.args = (error.message,)
            error.words = redacted(error.words, secret, label)  # what the member reads, in any language
            if isinstance(error, SafetyBlocked | NoImageReturned) and error.model_text:
                error.model_text = error.model_text.replace(secret, label)


def redacted(words: Words, secret: str, label: str) -> Words:
    """A message with a key's value replaced by its label, in a plain detail or in a Text's values."""
    if isinstance(words, Text):
        values = {
            name: redacted(value, secret, label) if isinstance(value, str | Text) else value
            for name, value in words.params.items()
        }
        return Text(words.key, **values)
    return words.replace(secret, label)
