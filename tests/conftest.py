"""Shared fixtures: an HTTP session and routers built from real settings against the fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from bot.providers.breaker import Breaker
from bot.providers.common import ProviderBase
from bot.providers.keys import KeyRing
from bot.providers.registry import build_router
from bot.providers.router import Router
from tests.fakes.settings import make_settings


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """One aiohttp session per test, like the bot's one per process."""
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def router_for(session: aiohttp.ClientSession) -> Callable[..., Router]:
    """Build a router from provider entries on the test's session."""

    def build(*providers: dict[str, Any], **overrides: Any) -> Router:
        return build_router(make_settings(*providers, **overrides), session)

    return build


class ManualClock:
    """A monotonic clock that moves only when the test advances it.

    A breaker's cooldown or a key's rest then ends when the test says so: a busy machine can neither
    end it before the test has checked what happens during it, nor make the test wait for it.
    """

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Let `seconds` pass."""
        self.now += seconds


def manual_clock(router: Router) -> ManualClock:
    """Put the router's breakers and its providers' key rings on one ManualClock (settings unchanged).

    Call it before the router has made any call: the breakers and key rings start afresh.
    """
    clock = ManualClock()
    router.breakers = {
        name: Breaker(b.name, b.threshold, b.cooldown, clock) for name, b in router.breakers.items()
    }
    for provider in router.providers:
        if isinstance(provider, ProviderBase):
            provider.keys = KeyRing(provider.config.name, provider.config.api_keys, clock)
    return clock
