"""Provider resilience over real HTTP: key rotation, the circuit breaker, fallback on image-less answers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest

from bot.config import load_settings
from bot.errors import (
    AuthFailed,
    ConfigError,
    NoImageReturned,
    OutOfCredits,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    SafetyBlocked,
)
from bot.i18n import Text
from bot.providers.base import GenerateRequest
from bot.providers.breaker import CircuitOpen
from bot.providers.keys import redacted
from bot.providers.router import ProviderStatus, Router
from tests.conftest import manual_clock
from tests.fakes.providers import FakeGemini, FakeNBPro, FakeOpenAIImages, FakeProvider, FakeTask, Fault

KEYS = ["key-alpha-0001", "key-bravo-0002"]
PROMPT = GenerateRequest("a lighthouse at dusk")
#: Short breaker settings: two failed calls open it, for a fifth of a second (of a ManualClock).
BREAKER = {"breaker_failures": 2, "breaker_cooldown": 0.2, "retry_attempts": 2}


def entry(fake: FakeProvider, kind: str, name: str = "p", **extra: Any) -> dict[str, Any]:
    """A provider entry pointing at a fake."""
    return {"name": name, "kind": kind, "base_url": fake.base_url, **extra}


def keys_seen(fake: FakeProvider) -> list[str | None]:
    """The key each request to the fake carried (Gemini header or Bearer token)."""
    seen = []
    for request in fake.requests:
        header = request.headers.get("x-goog-api-key") or request.headers.get("Authorization", "")
        seen.append(header.removeprefix("Bearer ") or None)
    return seen


def assert_secret(caplog: pytest.LogCaptureFixture, *errors: BaseException) -> None:
    """No key value in any captured log line or error message."""
    for key in KEYS:
        assert key not in caplog.text
        for error in errors:
            assert key not in str(error)
            if isinstance(error, ProviderError):
                assert key not in error.user_message
                assert all(key not in error.reply_text(locale) for locale in (None, "es-ES", "ja"))


@pytest.fixture(autouse=True)
def debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Capture everything, so that a key logged anywhere would be seen."""
    caplog.set_level(logging.DEBUG)


# -- several keys ---------------------------------------------------------------------------------


async def test_rate_limited_key_rotates_and_rests(
    router_for: Callable[..., Router], caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeGemini(api_keys=KEYS) as fake:
        router = router_for(entry(fake, "gemini", api_keys=KEYS))
        fake.script_for_key(KEYS[0], "rate_limited")  # retryDelay 36 s: past the retry budget
        result = await router.generate(PROMPT)
        assert result.images and keys_seen(fake) == [KEYS[0], KEYS[1]]
        await router.generate(PROMPT)  # the first key rests for its 36 s
        assert keys_seen(fake) == [KEYS[0], KEYS[1], KEYS[1]]
    assert "key #1 of 2 failed (RateLimited); trying key #2 of 2" in caplog.text
    assert_secret(caplog)


async def test_rested_key_is_preferred_again(router_for: Callable[..., Router]) -> None:
    async with FakeGemini(api_keys=KEYS) as fake:
        router = router_for(entry(fake, "gemini", api_keys=KEYS), retry_attempts=1)
        clock = manual_clock(router)
        fake.script_for_key(KEYS[0], Fault("rate_limited", retry_after=0.2))
        await router.generate(PROMPT)
        await router.generate(PROMPT)
        clock.advance(0.25)
        await router.generate(PROMPT)
        assert keys_seen(fake) == [KEYS[0], KEYS[1], KEYS[1], KEYS[0]]


async def test_openai_insufficient_quota_rotates(
    router_for: Callable[..., Router], caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeOpenAIImages(api_keys=KEYS) as fake:
        router = router_for(entry(fake, "openai-images", api_keys=KEYS))
        fake.script_for_key(KEYS[0], "insufficient_quota")  # 429 insufficient_quota: no HTTP retry
        await router.generate(PROMPT)
        await router.generate(PROMPT)  # an exhausted key rests an hour
        posts = [r for r in fake.requests if r.method == "POST"]
        assert [r.headers["Authorization"] for r in posts] == [f"Bearer {k}" for k in (*KEYS, KEYS[1])]
    assert_secret(caplog)


async def test_nbpro_402_rotates(router_for: Callable[..., Router], caplog: pytest.LogCaptureFixture) -> None:
    async with FakeNBPro(api_keys=KEYS) as fake:
        router = router_for(entry(fake, "nbpro", api_keys=KEYS))
        fake.script_for_key(KEYS[0], "out_of_credits")
        result = await router.generate(PROMPT)
        assert result.images
        posts = [r for r in fake.requests if r.method == "POST"]
        assert [r.headers["Authorization"] for r in posts] == [f"Bearer {k}" for k in KEYS]
    assert_secret(caplog)


async def test_task_polls_with_the_key_that_created_the_task(router_for: Callable[..., Router]) -> None:
    async with FakeTask(api_keys=KEYS) as fake:
        router = router_for(entry(fake, "task", api_keys=KEYS), retry_attempts=1)
        fake.script_for_key(KEYS[0], "rate_limited")
        await router.generate(PROMPT)
        creates = [k for k, r in zip(keys_seen(fake), fake.requests, strict=True) if r.method == "POST"]
        polls = [k for k, r in zip(keys_seen(fake), fake.requests, strict=True) if "/task/" in r.path]
        assert creates == KEYS and polls and set(polls) == {KEYS[1]}


async def test_every_key_rate_limited_propagates(
    router_for: Callable[..., Router], caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeGemini(api_keys=KEYS) as fake:
        router = router_for(entry(fake, "gemini", api_keys=KEYS))
        for key in KEYS:
            fake.script_for_key(key, "rate_limited")
        with pytest.raises(RateLimited) as caught:
            await router.generate(PROMPT)
        assert keys_seen(fake) == KEYS  # each key once
    assert_secret(caplog, caught.value)


async def test_every_key_out_of_credits_propagates(
    router_for: Callable[..., Router], caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeNBPro(api_keys=KEYS) as fake:
        router = router_for(entry(fake, "nbpro", api_keys=KEYS))
        for key in KEYS:
            fake.script_for_key(key, "out_of_credits")
        with pytest.raises(OutOfCredits) as caught:
            await router.generate(PROMPT)
        assert len(fake.requests) == 2
    assert_secret(caplog, caught.value)


async def test_refused_keys_are_skipped_and_warned_about_once(
    router_for: Callable[..., Router], caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeGemini(api_key="the-only-valid-key") as fake:
        router = router_for(entry(fake, "gemini", api_keys=KEYS))
        errors = []
        for _ in range(2):
            with pytest.raises(AuthFailed) as caught:
                await router.generate(PROMPT)
            errors.append(caught.value)
        assert keys_seen(fake) == [*KEYS, *KEYS]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert [w for w in warnings if "was refused" in w] == [
        "p: key #1 of 2 was refused by the provider; check it",
        "p: key #2 of 2 was refused by the provider; check it",
    ]
    assert_secret(caplog, *errors)


async def test_refused_key_then_good_key(router_for: Callable[..., Router]) -> None:
    async with FakeOpenAIImages(api_key=KEYS[1]) as fake:
        router = router_for(entry(fake, "openai-images", api_keys=KEYS))
        await router.generate(PROMPT)
        await router.generate(PROMPT)
        posts = [r.headers["Authorization"] for r in fake.requests if r.method == "POST"]
        assert posts == [f"Bearer {KEYS[0]}", f"Bearer {KEYS[1]}", f"Bearer {KEYS[1]}"]


async def test_echoed_key_is_redacted(
    router_for: Callable[..., Router], caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeNBPro(api_key=KEYS[0]) as fake:
        router = router_for(entry(fake, "nbpro", api_keys=[KEYS[0]]))
        fake.script(Fault("server_error", status=400, message=f"unknown field for token {KEYS[0]}"))
        with pytest.raises(ProviderError) as caught:
            await router.generate(PROMPT)
        assert KEYS[0] not in str(caught.value) and "key #1 of 1" in caught.value.message
        assert_secret(caplog, caught.value)  # nor in the reply a member reads, in any language


def test_a_key_is_redacted_inside_a_worded_message_too() -> None:
    """A key a model or a server echoed may sit in a catalogue message's values: it goes there too."""
    said = Text("provider.safety.image_said", provider="p", reason="SAFETY", said=f"bad token {KEYS[0]}")
    shown = redacted(Text("provider.timeout.making", provider="p", why=said), KEYS[0], "key #1 of 1")
    for locale in (None, "es-ES", "pt-BR", "ja"):
        assert KEYS[0] not in shown.render(locale) and "key #1 of 1" in shown.render(locale)
    assert redacted(f"echo {KEYS[0]}", KEYS[0], "key #1 of 1") == "echo key #1 of 1"


def test_api_key_envs_resolve_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NB_KEY_A", KEYS[0])
    monkeypatch.setenv("NB_KEY_B", KEYS[1])
    settings = load_settings(
        env_file=None, providers=[{"name": "g", "kind": "gemini", "api_key_envs": ["NB_KEY_A", "NB_KEY_B"]}]
    )
    [provider] = settings.providers
    assert [k.get_secret_value() for k in provider.api_keys] == KEYS
    assert provider.api_key is not None and provider.api_key.get_secret_value() == KEYS[0]
    for shown in (repr(settings), settings.model_dump_json(), str(provider.model_dump())):
        assert KEYS[0] not in shown and KEYS[1] not in shown


def test_api_key_env_and_envs_together_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NB_KEY_A", KEYS[0])
    provider = {"name": "g", "kind": "gemini", "api_key_env": "NB_KEY_A", "api_key_envs": ["NB_KEY_A"]}
    with pytest.raises(ConfigError) as caught:
        load_settings(env_file=None, providers=[provider])
    assert "api_key_env or api_key_envs, not both" in caught.value.message
    assert "\n" not in caught.value.message


def test_missing_second_key_env_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NB_KEY_A", KEYS[0])
    monkeypatch.delenv("NB_KEY_MISSING", raising=False)
    provider = {"name": "g", "kind": "gemini", "api_key_envs": ["NB_KEY_A", "NB_KEY_MISSING"]}
    with pytest.raises(ConfigError, match="NB_KEY_MISSING"):
        load_settings(env_file=None, providers=[provider])


# -- the circuit breaker --------------------------------------------------------------------------


async def _fail(router: Router, fake: FakeGemini, error: type[Exception] = ProviderUnavailable) -> None:
    """One generate call that fails with 503 on every attempt."""
    fake.script("unavailable", "unavailable")
    with pytest.raises(error):
        await router.generate(PROMPT)


async def test_breaker_opens_fails_fast_and_a_probe_closes_it(router_for: Callable[..., Router]) -> None:
    async with FakeGemini() as fake:
        router = router_for(entry(fake, "gemini", name="google"), **BREAKER)
        clock = manual_clock(router)
        await _fail(router, fake)
        assert router.status() == [ProviderStatus("google", "gemini", "closed", 1)]
        await _fail(router, fake)
        assert router.status() == [("google", "gemini", "open", 2)]
        sent = len(fake.requests)
        with pytest.raises(CircuitOpen) as caught:
            await router.generate(PROMPT)
        assert caught.value.message == "google is temporarily unavailable; try again in 1 s"
        assert isinstance(caught.value, ProviderUnavailable) and len(fake.requests) == sent  # no HTTP
        clock.advance(0.25)
        assert router.status()[0].state == "half-open"
        assert (await router.generate(PROMPT)).images
        assert router.status() == [("google", "gemini", "closed", 0)]


async def test_failed_probe_reopens(router_for: Callable[..., Router]) -> None:
    async with FakeGemini() as fake:
        router = router_for(entry(fake, "gemini", name="google"), **BREAKER)
        clock = manual_clock(router)
        await _fail(router, fake)
        await _fail(router, fake)
        clock.advance(0.25)
        await _fail(router, fake)  # the probe reaches the fake and fails
        assert router.status()[0].state == "open"
        sent = len(fake.requests)
        with pytest.raises(CircuitOpen):
            await router.generate(PROMPT)
        assert len(fake.requests) == sent


async def test_half_open_lets_one_probe_through(router_for: Callable[..., Router]) -> None:
    async with FakeGemini() as fake:
        router = router_for(entry(fake, "gemini", name="google"), **BREAKER)
        clock = manual_clock(router)
        await _fail(router, fake)
        await _fail(router, fake)
        clock.advance(0.25)
        fake.delay = 0.2
        sent = len(fake.requests)
        outcomes = await asyncio.gather(*(router.generate(PROMPT) for _ in range(3)), return_exceptions=True)
        assert sum(not isinstance(o, BaseException) for o in outcomes) == 1
        assert sum(isinstance(o, CircuitOpen) for o in outcomes) == 2
        assert len(fake.requests) == sent + 1
        assert router.status()[0].state == "closed"


async def test_user_outcomes_do_not_count_and_success_resets(router_for: Callable[..., Router]) -> None:
    async with FakeGemini() as fake:
        router = router_for(entry(fake, "gemini", name="google"), **BREAKER)
        await _fail(router, fake)
        fake.script("image_safety")
        with pytest.raises(SafetyBlocked):
            await router.generate(PROMPT)
        fake.script("text_only")
        with pytest.raises(NoImageReturned):
            await router.generate(PROMPT)
        assert router.status()[0].consecutive_failures == 1
        await router.generate(PROMPT)
        assert router.status() == [("google", "gemini", "closed", 0)]
        await _fail(router, fake)
        fake.script("prompt_blocked")
        with pytest.raises(SafetyBlocked):
            await router.generate(PROMPT)
        await _fail(router, fake)
        assert router.status() == [("google", "gemini", "open", 2)]


async def test_router_falls_back_past_an_open_provider(router_for: Callable[..., Router]) -> None:
    async with FakeGemini() as first, FakeGemini() as second:
        router = router_for(
            entry(first, "gemini", name="first"),
            entry(second, "gemini", name="second"),
            **{**BREAKER, "breaker_failures": 1},
        )
        clock = manual_clock(router)
        first.script("unavailable", "unavailable")
        assert (await router.generate(PROMPT)).provider == "second"  # first failed and opened
        assert [s.state for s in router.status()] == ["open", "closed"]
        assert [p.name for p in router.candidates(None, None)] == ["second"]
        sent = len(first.requests)
        assert (await router.generate(PROMPT)).provider == "second"
        assert len(first.requests) == sent  # skipped, not tried
        with pytest.raises(CircuitOpen, match="first is temporarily unavailable"):
            await router.generate(PROMPT, provider="first")  # named explicitly: fail fast
        clock.advance(0.25)
        assert (await router.generate(PROMPT)).provider == "first"  # the probe
        assert router.status() == [("first", "gemini", "closed", 0), ("second", "gemini", "closed", 0)]


async def test_all_providers_open_fails_fast_with_the_soonest(router_for: Callable[..., Router]) -> None:
    async with FakeGemini() as first, FakeGemini() as second:
        router = router_for(
            entry(first, "gemini", name="first"),
            entry(second, "gemini", name="second"),
            **{**BREAKER, "breaker_failures": 1, "breaker_cooldown": 30.0},
        )
        manual_clock(router)  # no time passes between the two calls, however busy the machine
        first.script("unavailable", "unavailable")
        second.script("unavailable", "unavailable")
        with pytest.raises(ProviderUnavailable):
            await router.generate(PROMPT)
        with pytest.raises(CircuitOpen, match=r"first is temporarily unavailable; try again in 30 s"):
            await router.generate(PROMPT)


async def test_every_key_rate_limited_counts_once(router_for: Callable[..., Router]) -> None:
    async with FakeGemini(api_keys=KEYS) as fake:
        router = router_for(entry(fake, "gemini", api_keys=KEYS), **BREAKER)
        for key in KEYS:
            fake.script_for_key(key, "rate_limited")
        with pytest.raises(RateLimited):
            await router.generate(PROMPT)
        assert router.status()[0].consecutive_failures == 1


# -- fallback when no image comes back ------------------------------------------------------------


def _two(router_for: Callable[..., Router], first: FakeGemini, second: FakeGemini, **kw: Any) -> Router:
    """A router over two Gemini fakes, first then second."""
    return router_for(entry(first, "gemini", name="first"), entry(second, "gemini", name="second"), **kw)


async def test_no_image_does_not_fall_back_by_default(router_for: Callable[..., Router]) -> None:
    async with FakeGemini() as first, FakeGemini() as second:
        router = _two(router_for, first, second)
        first.script("text_only")
        with pytest.raises(NoImageReturned):
            await router.generate(PROMPT)
        assert not second.requests


async def test_no_image_falls_back_when_enabled(router_for: Callable[..., Router]) -> None:
    async with FakeGemini() as first, FakeGemini() as second:
        router = _two(router_for, first, second, fallback_on_no_image=True)
        first.script("text_only")
        result = await router.generate(PROMPT)
        assert result.provider == "second" and result.images and len(second.requests) == 1


@pytest.mark.parametrize("fault", ["image_safety", "prompt_blocked"])
async def test_safety_block_never_falls_back(router_for: Callable[..., Router], fault: str) -> None:
    async with FakeGemini() as first, FakeGemini() as second:
        router = _two(router_for, first, second, fallback_on_no_image=True)
        first.script(fault)
        with pytest.raises(SafetyBlocked):
            await router.generate(PROMPT)
        assert not second.requests
