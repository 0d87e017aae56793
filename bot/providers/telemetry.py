"""What the provider layer reports as it works: each HTTP attempt's time, each retry, each key set aside.

The providers only call these hooks; the bot's metrics (bot/ops/metrics.py) implement them and
bot/wiring.py passes them in, so this package never imports the operations side. The command line
runs with `NO_TELEMETRY`, which records nothing.
"""

from __future__ import annotations

from typing import Protocol


class Telemetry(Protocol):
    """Hooks the HTTP client, the retry policy and the key ring call (each must be cheap and never raise)."""

    def request_done(self, provider: str, seconds: float) -> None:
        """One HTTP exchange with a provider's API ended (answered, failed or timed out) after `seconds`."""

    def retried(self, provider: str) -> None:
        """A failed attempt is about to be tried again."""

    def key_rested(self, provider: str) -> None:
        """An API key was set aside for a while (rate limited, out of credits or refused)."""


class NoTelemetry:
    """Records nothing (the command line, and providers built without metrics)."""

    def request_done(self, provider: str, seconds: float) -> None:
        """Nothing to record."""

    def retried(self, provider: str) -> None:
        """Nothing to record."""

    def key_rested(self, provider: str) -> None:
        """Nothing to record."""


#: The shared do-nothing telemetry (it holds no state).
NO_TELEMETRY: Telemetry = NoTelemetry()
