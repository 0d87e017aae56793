"""The one retry policy, through real providers against the fakes, on a clock that moves only as it waits."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.errors import (
    AuthFailed,
    BadRequest,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)
from bot.providers.base import GenerateRequest
from bot.providers.common import ProviderBase
from bot.providers.http import HttpClient
from bot.providers.registry import INTERFACES, limits_for
from bot.providers.retry import Retryable, RetryPolicy, run
from tests.fakes.providers import FakeGemini, FakeProvider, FakeTask, Fault
from tests.fakes.settings import make_settings

KEY = "retry-test-key"
GENERATE = "/v1beta/models/gemini-2.5-flash-image:generateContent"
CREATE = "/model/v1/generation"


class VirtualTime:
    """A clock that moves only when the policy sleeps: every wait is recorded and none is real."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)

    def clock(self) -> float:
        return self.now

    def policy(self, **bounds: Any) -> RetryPolicy:
        return RetryPolicy(sleep=self.sleep, clock=self.clock, **bounds)


@pytest.fixture
def vtime() -> VirtualTime:
    return VirtualTime()


@pytest.fixture
async def gemini_fake() -> AsyncIterator[FakeGemini]:
    async with FakeGemini(api_key=KEY) as server:
        yield server


@pytest.fixture
async def task_fake() -> AsyncIterator[FakeTask]:
    async with FakeTask(api_key=KEY) as server:
        server.polls_to_complete = 0
        yield server


def provider(
    kind: str, fake: FakeProvider, session: aiohttp.ClientSession, policy: RetryPolicy
) -> ProviderBase:
    """A real provider built from real settings, on an HTTP client with the given policy."""
    settings = make_settings({"name": "p", "kind": kind, "base_url": fake.base_url, "api_key": KEY})
    config = next(c for c in settings.providers if c.name == "p")
    return INTERFACES[kind](config, HttpClient(session, policy), limits_for(settings, config))


def paths(fake: FakeProvider) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in fake.requests if not r.path.startswith("/outputs/")]


async def test_server_hint_overrides_the_backoff(
    gemini_fake: FakeGemini,
    session: aiohttp.ClientSession,
    vtime: VirtualTime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bot.providers.retry")
    gemini = provider("gemini", gemini_fake, session, vtime.policy(base_delay=10.0))
    gemini_fake.script(Fault("rate_limited", retry_after=0.05))
    result = await gemini.generate(GenerateRequest("x"))
    assert result.images
    assert paths(gemini_fake) == [("POST", GENERATE)] * 2
    assert vtime.waits == [pytest.approx(0.05)]  # RetryInfo.retryDelay, not 10 s of backoff
    assert "p: RateLimited, retry 1 in 0.1s" in caplog.messages  # one line per retry


async def test_hint_is_not_capped_by_max_delay_only_by_the_budget(
    gemini_fake: FakeGemini, session: aiohttp.ClientSession, vtime: VirtualTime
) -> None:
    gemini = provider("gemini", gemini_fake, session, vtime.policy(max_delay=1.0, total_seconds=60.0))
    gemini_fake.script(Fault("rate_limited", retry_after=5.0))
    await gemini.generate(GenerateRequest("x"))
    assert vtime.waits == [pytest.approx(5.0)]


async def test_budget_stops_retries_before_the_attempts_run_out(
    gemini_fake: FakeGemini, session: aiohttp.ClientSession, vtime: VirtualTime
) -> None:
    gemini = provider("gemini", gemini_fake, session, vtime.policy(attempts=10, total_seconds=1.0))
    gemini_fake.script(*[Fault("rate_limited", retry_after=0.4)] * 10)
    with pytest.raises(RateLimited) as caught:  # the typed error, never tenacity's RetryError
        await gemini.generate(GenerateRequest("x"))
    assert caught.value.retry_after == pytest.approx(0.4)
    assert vtime.waits == [pytest.approx(0.4)] * 2  # a third wait would end at 1.2 s, past the budget
    assert gemini_fake.calls == 3


async def test_a_hint_past_the_budget_is_not_waited_for(
    gemini_fake: FakeGemini, session: aiohttp.ClientSession, vtime: VirtualTime
) -> None:
    gemini = provider("gemini", gemini_fake, session, vtime.policy(total_seconds=10.0))
    gemini_fake.script(Fault("rate_limited", retry_after=30.0))
    with pytest.raises(RateLimited):
        await gemini.generate(GenerateRequest("x"))
    assert vtime.waits == []
    assert gemini_fake.calls == 1


async def test_attempts_cap_with_jittered_exponential_backoff(
    gemini_fake: FakeGemini, session: aiohttp.ClientSession, vtime: VirtualTime
) -> None:
    gemini = provider("gemini", gemini_fake, session, vtime.policy(attempts=4, base_delay=1.0, max_delay=3.0))
    gemini_fake.script(*["unavailable"] * 10)
    with pytest.raises(ProviderUnavailable):
        await gemini.generate(GenerateRequest("x"))
    assert gemini_fake.calls == 4
    first, second, third = vtime.waits
    assert 0.75 <= first < 1.25
    assert 1.5 <= second < 2.5
    assert 2.25 <= third < 3.75  # 4 s of backoff, capped at max_delay before the jitter


@pytest.mark.parametrize(("status", "error"), [(400, BadRequest), (401, AuthFailed), (403, AuthFailed)])
async def test_client_errors_are_never_retried(
    gemini_fake: FakeGemini,
    session: aiohttp.ClientSession,
    vtime: VirtualTime,
    status: int,
    error: type[ProviderError],
) -> None:
    gemini = provider("gemini", gemini_fake, session, vtime.policy())
    gemini_fake.script(*[Fault("unavailable", status=status)] * 3)
    with pytest.raises(error):
        await gemini.generate(GenerateRequest("x"))
    assert gemini_fake.calls == 1
    assert vtime.waits == []


async def test_task_create_is_not_retried_on_500(
    task_fake: FakeTask, session: aiohttp.ClientSession, vtime: VirtualTime
) -> None:
    task = provider("task", task_fake, session, vtime.policy())
    task_fake.script("server_error", "server_error")
    with pytest.raises(ProviderUnavailable):  # the POST may have created a task: never repeat it
        await task.generate(GenerateRequest("x"))
    assert paths(task_fake) == [("POST", CREATE)]
    assert vtime.waits == []


async def test_task_create_is_retried_on_a_rate_limit_after_its_retry_after(
    task_fake: FakeTask, session: aiohttp.ClientSession, vtime: VirtualTime
) -> None:
    task = provider("task", task_fake, session, vtime.policy(base_delay=10.0))
    task_fake.script(Fault("rate_limited", retry_after=1))
    result = await task.generate(GenerateRequest("x"))
    assert result.images
    assert vtime.waits == [pytest.approx(1.0)]  # the Retry-After header, not 10 s of backoff
    [method_path, *rest] = paths(task_fake)
    assert [method_path, rest[0]] == [("POST", CREATE)] * 2
    assert rest[1][0] == "GET"  # then the task is polled


async def test_task_create_rate_limits_respect_the_attempts_cap(
    task_fake: FakeTask, session: aiohttp.ClientSession, vtime: VirtualTime
) -> None:
    task = provider("task", task_fake, session, vtime.policy(attempts=2))
    task_fake.script(*[Fault("rate_limited", retry_after=1)] * 5)
    with pytest.raises(RateLimited):
        await task.generate(GenerateRequest("x"))
    assert paths(task_fake) == [("POST", CREATE)] * 2
    assert vtime.waits == [pytest.approx(1.0)]


async def test_run_unwraps_the_last_retryable_failure(vtime: VirtualTime) -> None:
    cause = OSError("connection reset")
    calls = 0

    async def failing() -> None:
        nonlocal calls
        calls += 1
        raise Retryable(ProviderUnavailable("p could not be reached", provider="p"), cause)

    with pytest.raises(ProviderUnavailable) as caught:
        await run(vtime.policy(attempts=3, base_delay=0.5), failing, provider="p")
    assert caught.value.__cause__ is cause
    assert calls == 3 and len(vtime.waits) == 2


async def test_single_makes_one_attempt(vtime: VirtualTime) -> None:
    policy = vtime.policy(attempts=5).single()
    assert policy.attempts == 1 and policy.sleep == vtime.sleep
    with pytest.raises(RateLimited):
        await run(policy, _rate_limited, provider="p")
    assert vtime.waits == []


async def _rate_limited() -> None:
    raise Retryable(RateLimited("slow down", retry_after=0.1, provider="p"), None)
