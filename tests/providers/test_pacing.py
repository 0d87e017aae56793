"""Requests per minute over real HTTP: a provider's and a key's rates are kept by waiting, not by 429s."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from bot.providers.base import GenerateRequest
from bot.providers.pacing import Pacer
from bot.providers.router import Router
from tests.fakes.providers import FakeGemini, Fault
from tests.providers.test_resilience import KEYS, entry, keys_seen

PROMPT = GenerateRequest("a lighthouse at dusk")
#: Long enough for any machine: a request over the rate waits about 30 s, never this little.
NOT_YET = 0.3


async def test_a_provider_over_its_rate_waits_instead_of_sending(router_for: Callable[..., Router]) -> None:
    async with FakeGemini() as fake:
        # 20 a minute: a burst of two (a tenth of a minute's), then one every 3 s.
        router = router_for(entry(fake, "gemini", api_key="k", requests_per_minute=20))
        for _ in range(2):
            await router.generate(PROMPT)
        third = asyncio.ensure_future(router.generate(PROMPT))
        done, _ = await asyncio.wait([third], timeout=NOT_YET)
        assert not done and fake.calls == 2  # the third waits its turn at the rate
        third.cancel()
        with pytest.raises(asyncio.CancelledError):
            await third
        assert fake.calls == 2


async def test_a_key_at_its_rate_hands_over_to_the_next_key(router_for: Callable[..., Router]) -> None:
    async with FakeGemini(api_keys=KEYS) as fake:
        router = router_for(entry(fake, "gemini", api_keys=KEYS, key_requests_per_minute=1))
        await router.generate(PROMPT)
        await router.generate(PROMPT)
        assert keys_seen(fake) == KEYS  # the first key had spent its minute: the second took over


async def test_processes_share_the_rate() -> None:
    pacer = Pacer(per_provider=40, per_key=None)
    pacer.share(2)  # two live processes: 20 a minute each, in bursts of two
    await pacer.wait(None)
    await pacer.wait(None)
    assert not pacer.has_capacity(None)
    pacer.share(1)  # the other process left: the whole rate again
    assert pacer.has_capacity(None)
    pacer.share(100)  # never below one request a minute
    assert pacer.has_capacity(None)
    await pacer.wait(None)
    assert not pacer.has_capacity(None)


async def test_no_limit_never_waits() -> None:
    pacer = Pacer()
    for _ in range(1000):
        await pacer.wait(None)
    assert pacer.has_capacity(None) and pacer.has_capacity(0)


async def test_a_minute_never_sees_much_more_than_the_rate() -> None:
    pacer = Pacer(per_provider=100)
    at_once = 0
    while pacer.has_capacity(None) and at_once < 1000:
        await pacer.wait(None)
        at_once += 1
    assert at_once == 10  # a tenth of a minute's requests at once; the rest come at the rate


async def test_a_fallback_provider_keeps_its_own_concurrency(router_for: Callable[..., Router]) -> None:
    async with FakeGemini(api_key="ka") as first, FakeGemini(api_key="kb") as second:
        first.script(*[Fault("unavailable")] * 20)  # every job falls back
        release = second.hold_next(3)
        router = router_for(
            entry(first, "gemini", name="first", api_key="ka"),
            entry(second, "gemini", name="second", api_key="kb", concurrency=1),
            retry_attempts=1,
            breaker_failures=100,
        )
        jobs = [asyncio.ensure_future(router.generate(PROMPT)) for _ in range(3)]
        done, _ = await asyncio.wait(jobs, timeout=NOT_YET)
        assert not done and second.calls == 1  # one call at once there, whoever was routed where
        release.set()
        results = await asyncio.wait_for(asyncio.gather(*jobs), 30)
        assert len(results) == 3 and second.calls == 3
