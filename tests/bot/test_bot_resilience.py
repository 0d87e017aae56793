"""Provider resilience through the fake Discord: key rotation, the circuit breaker and fallback.

Each test checks what the user sees, what was charged, and that the next command still works.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.botenv import eventually, running_bot, settled_usage, wait_result
from tests.conftest import manual_clock
from tests.fakes.discord import FakeDiscord
from tests.fakes.providers import FakeGemini, FakeNBPro, FakeOpenAIImages, FakeProvider, Fault

KEYS = ["bot-key-alpha-0001", "bot-key-bravo-0002"]


def entry(fake: FakeProvider, kind: str, name: str, **extra: Any) -> dict[str, Any]:
    """A provider entry pointing at a fake."""
    return {"name": name, "kind": kind, "base_url": fake.base_url, **extra}


def generations(fake: FakeProvider) -> list[str | None]:
    """The key each generation request carried (Gemini header or Bearer token), downloads left out."""
    keys = []
    for request in fake.requests:
        if request.method != "POST":
            continue
        header = request.headers.get("x-goog-api-key") or request.headers.get("Authorization", "")
        keys.append(header.removeprefix("Bearer ") or None)
    return keys


async def imagine(fake: FakeDiscord, prompt: str = "a lamp") -> dict[str, Any]:
    """Run /imagine as alice and return what she finally sees."""
    inter = await fake.send_slash("imagine", {"prompt": prompt})
    return await inter.wait_done(timeout=60)


def shown_provider(message: dict[str, Any]) -> str:
    """The provider named in the result embed's Model field ("model (provider)")."""
    [embed] = message["embeds"]
    model = next(f["value"] for f in embed["fields"] if f["name"] == "Model")
    return model.rsplit("(", 1)[1].rstrip(")")


def delivered_from(fake: FakeDiscord, message: dict[str, Any], provider: FakeProvider) -> bool:
    """Whether the message carries exactly the image the provider fake made last."""
    files = fake.files_of(message)
    return len(files) == 1 and bool(provider.outputs) and files[0][1] == provider.outputs[-1]


# -- several keys ---------------------------------------------------------------------------------


async def test_rate_limited_first_key_the_second_makes_the_image(tmp_path: Path) -> None:
    async with FakeDiscord() as fake, FakeGemini(api_keys=KEYS) as gemini:
        async with running_bot(fake, tmp_path, entry(gemini, "gemini", "google", api_keys=KEYS)) as bot:
            gemini.script_for_key(KEYS[0], "rate_limited")  # retryDelay 36 s: past the retry budget
            message = await imagine(fake)
            assert delivered_from(fake, message, gemini)
            assert generations(gemini) == KEYS  # the first key refused, the second made it
            assert await settled_usage(fake, bot) == (100, 0)  # charged once
            assert fake.files_of(await imagine(fake))
            assert generations(gemini) == [*KEYS, KEYS[1]]  # the first key rests
            assert await settled_usage(fake, bot) == (200, 0)
        assert fake.violations == []


def _gemini(keys: list[str]) -> FakeProvider:
    return FakeGemini(api_keys=keys)


def _relay(keys: list[str]) -> FakeProvider:
    return FakeOpenAIImages(api_keys=keys)


def _nbpro(keys: list[str]) -> FakeProvider:
    return FakeNBPro(api_keys=keys)


@pytest.mark.parametrize(
    ("make", "kind", "fault", "title", "needle", "cost"),
    [
        (_gemini, "gemini", "rate_limited", "Rate limited", "Try again in 36 s", 100),
        (_relay, "openai-images", "insufficient_quota", "Provider account problem", "out of credits", 100),
        (_nbpro, "nbpro", "out_of_credits", "Provider account problem", "out of credits", 350),
    ],
)
async def test_every_key_refused_is_a_specific_message_and_no_charge(
    tmp_path: Path,
    make: Callable[[list[str]], FakeProvider],
    kind: str,
    fault: str,
    title: str,
    needle: str,
    cost: int,
) -> None:
    async with FakeDiscord() as fake, make(KEYS) as provider:
        async with running_bot(fake, tmp_path, entry(provider, kind, "p", api_keys=KEYS)) as bot:
            for key in KEYS:
                provider.script_for_key(key, fault)
            message = await imagine(fake)
            [embed] = message["embeds"]
            assert title in embed["title"] and needle in embed["description"]
            assert message["flags"] & 64 and not fake.files_of(message)
            assert generations(provider) == KEYS  # each key once, then it gave up
            assert not any(key in str(message) for key in KEYS)
            assert await settled_usage(fake, bot) == (0, 0)
            # The provider recovers: the next command works, though both keys are resting.
            assert delivered_from(fake, await imagine(fake), provider)
            assert await settled_usage(fake, bot) == (cost, 0)  # the configured price of one image
        assert fake.violations == []


# -- the circuit breaker --------------------------------------------------------------------------


async def test_open_breaker_sends_jobs_straight_to_the_next_provider(tmp_path: Path) -> None:
    async with FakeDiscord() as fake, FakeGemini() as first, FakeGemini() as second:
        providers = (entry(first, "gemini", "first"), entry(second, "gemini", "second"))
        settings = {"breaker_failures": 2, "breaker_cooldown": 120.0, "retry_attempts": 1}
        async with running_bot(fake, tmp_path, *providers, **settings) as bot:
            first.script("unavailable", "unavailable")
            for _ in range(2):  # each fails over to the second provider; the second failure opens
                message = await imagine(fake)
                assert shown_provider(message) == "second" and delivered_from(fake, message, second)
            assert [s.state for s in bot.router.status()] == ["open", "closed"]
            sent = len(first.requests)
            assert sent == 2
            for _ in range(3):  # while open, the first provider is not even tried
                message = await imagine(fake)
                assert shown_provider(message) == "second" and delivered_from(fake, message, second)
            assert len(first.requests) == sent
            assert len(second.requests) == 5
            assert [s.state for s in bot.router.status()] == ["open", "closed"]
            assert await settled_usage(fake, bot) == (500, 0)  # charged once per image, never for a failure
        assert fake.violations == []


async def test_open_breakers_everywhere_fail_fast_without_charge(tmp_path: Path) -> None:
    async with FakeDiscord() as fake, FakeGemini() as first, FakeGemini() as second:
        providers = (entry(first, "gemini", "first"), entry(second, "gemini", "second"))
        settings = {"breaker_failures": 1, "breaker_cooldown": 3.0, "retry_attempts": 1}
        async with running_bot(fake, tmp_path, *providers, **settings) as bot:
            clock = manual_clock(bot.router)  # the cooldown ends when the test says, not sooner
            first.script("unavailable")
            second.script("unavailable")
            message = await imagine(fake)  # both fail: both breakers open
            assert "Provider unavailable" in message["embeds"][0]["title"]
            assert [s.state for s in bot.router.status()] == ["open", "open"]
            sent = (len(first.requests), len(second.requests))
            message = await imagine(fake)
            [embed] = message["embeds"]
            assert "Provider unavailable" in embed["title"]
            assert "temporarily unavailable; try again in" in embed["description"]
            assert (len(first.requests), len(second.requests)) == sent  # no request at all
            assert await settled_usage(fake, bot) == (0, 0)
            clock.advance(3.0)  # the cooldown passes; the probe finds the first provider well
            assert bot.router.status()[0].state == "half-open"
            assert delivered_from(fake, await imagine(fake), first)
            assert bot.router.status()[0].state == "closed"
            assert await settled_usage(fake, bot) == (100, 0)
        assert fake.violations == []


# -- fallback when no image comes back ------------------------------------------------------------


async def test_no_image_falls_back_to_the_next_provider_when_enabled(tmp_path: Path) -> None:
    async with FakeDiscord() as fake, FakeGemini() as first, FakeGemini() as second:
        providers = (entry(first, "gemini", "first"), entry(second, "gemini", "second"))
        async with running_bot(fake, tmp_path, *providers, fallback_on_no_image=True) as bot:
            first.script("text_only")
            message = await imagine(fake)
            assert shown_provider(message) == "second" and delivered_from(fake, message, second)
            assert (len(first.requests), len(second.requests)) == (1, 1)
            assert await settled_usage(fake, bot) == (100, 0)  # charged once
            assert delivered_from(fake, await imagine(fake), first)
            assert await settled_usage(fake, bot) == (200, 0)
        assert fake.violations == []


@pytest.mark.parametrize(
    ("fault", "fallback", "title", "needle"),
    [
        ("image_safety", True, "Blocked by safety filters", "IMAGE_SAFETY"),
        ("prompt_blocked", True, "Blocked by safety filters", "PROHIBITED_CONTENT"),
        ("text_only", False, "No image returned", ""),  # fallback_on_no_image is off by default
    ],
)
async def test_no_fallback_after_a_safety_block(
    tmp_path: Path, fault: str, fallback: bool, title: str, needle: str
) -> None:
    async with FakeDiscord() as fake, FakeGemini() as first, FakeGemini() as second:
        providers = (entry(first, "gemini", "first"), entry(second, "gemini", "second"))
        async with running_bot(fake, tmp_path, *providers, fallback_on_no_image=fallback) as bot:
            first.script(fault)
            message = await imagine(fake)
            [embed] = message["embeds"]
            assert title in embed["title"] and needle in embed["description"]
            assert message["flags"] & 64 and not fake.files_of(message)
            assert not second.requests  # the second provider never saw the prompt
            assert await settled_usage(fake, bot) == (0, 0)
            assert delivered_from(fake, await imagine(fake), first)
            assert not second.requests
            assert await settled_usage(fake, bot) == (100, 0)
        assert fake.violations == []


# -- a 429 storm ----------------------------------------------------------------------------------


async def test_a_429_storm_is_told_apart_cut_short_and_survived(tmp_path: Path) -> None:
    """Twelve members at once while the provider rate limits everything: each is told it is rate
    limited (with when to retry) or that the provider is paused; the breaker stops the hammering;
    nothing is charged; once the storm passes the next command makes an image."""
    async with FakeDiscord() as fake, FakeGemini() as gemini:
        members = ["alice", *(fake.add_user(f"member{n}")["username"] for n in range(11))]
        # At most 8 calls in flight (a provider's `concurrency` would do the same): the rest meet the
        # breaker once it opens.
        settings = {
            "breaker_failures": 3,
            "breaker_cooldown": 1.0,
            "max_concurrent_jobs": 12,
            "max_running_jobs": 8,
        }
        async with running_bot(fake, tmp_path, entry(gemini, "gemini", "google"), **settings) as bot:
            gemini.script(*[Fault("rate_limited", retry_after=0.5)] * 200)
            handles = await asyncio.gather(
                *(fake.send_slash("imagine", {"prompt": f"a lamp for {m}"}, user=m) for m in members)
            )
            answers = [await wait_result(h) for h in handles]  # past the queue positions
            for answer in answers:
                [embed] = answer["embeds"]
                assert not fake.files_of(answer) and answer["flags"] & 64  # private, no image
                rate_limited = "Rate limited" in embed["title"] and "Try again in 1 s" in embed["description"]
                paused = "temporarily unavailable; try again in" in embed["description"]
                assert rate_limited or paused, embed
            assert len(generations(gemini)) < len(members) * 3  # the breaker cut the storm short
            assert bot.quotas is not None
            rows = await bot.quotas.audit(int(fake.guild_id), limit=50)
            assert len(rows) == len(members) and {r.status for r in rows} == {"refunded"}
            gemini.clear_script()  # the storm passes
            await eventually(  # the breaker's cooldown; its probe goes through
                lambda: bot.router.status()[0].state == "half-open", what="the breaker's cooldown"
            )
            assert fake.files_of(await imagine(fake))
            assert await settled_usage(fake, bot) == (100, 0)
        assert fake.violations == []
