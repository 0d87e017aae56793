"""Errors carry their facts: every error class has them, and every place that acts on an error reads them."""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
import re
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr

import bot
import bot.errors
from bot.cli import _fail
from bot.errors import (
    AuthFailed,
    BadRequest,
    ConfigError,
    DeliveryFailed,
    ImageTooLarge,
    InputError,
    NanoBotError,
    NoImageReturned,
    OutOfCredits,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    Refused,
    SafetyBlocked,
    StorageUnavailable,
)
from bot.i18n import Text, catalogue
from bot.ops.metrics import error_label, outcome_of
from bot.providers.breaker import Breaker, CircuitOpen
from bot.providers.http import HttpClient, Limits, RetryPolicy
from bot.providers.keys import KeyRing
from bot.ui.embeds import error_text
from tests.conftest import ManualClock

SNAKE = re.compile(r"^[a-z]+(_[a-z]+)*$")


def _import_every_module() -> None:
    """Import every module of the bot, so that error classes defined outside bot/errors.py are seen too."""
    for module in pkgutil.walk_packages(bot.__path__, "bot."):
        if module.name.endswith("__main__") or ".migrations" in module.name:
            continue  # the entry point runs the CLI; Alembic's env.py runs migrations on import
        importlib.import_module(module.name)


def _subclasses(cls: type[NanoBotError]) -> Iterator[type[NanoBotError]]:
    """cls and every class below it."""
    yield cls
    for sub in cls.__subclasses__():
        yield from _subclasses(sub)


_import_every_module()
ERRORS = sorted(set(_subclasses(NanoBotError)), key=lambda c: c.__name__)
PROVIDER_ERRORS = [c for c in ERRORS if issubclass(c, ProviderError)]


def make(cls: type[NanoBotError]) -> NanoBotError:
    """An instance of an error class (Refused names its rule in the title)."""
    return cls("⛔ Not allowed", "boom") if issubclass(cls, Refused) else cls("boom")


# --- every class has its facts ---------------------------------------------------------------------


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: c.__name__)
def test_every_error_has_its_facts(cls: type[NanoBotError]) -> None:
    assert isinstance(cls.title, Text) and catalogue().has(cls.title.key)
    assert all(str(cls.title).strip() and cls.title.render(lang) != str(cls.title) for lang in ("es", "ja"))
    assert SNAKE.match(cls.metric_label), cls.metric_label
    assert SNAKE.match(cls.outcome), cls.outcome
    assert cls.exit_code in {2, 3}
    flags = (cls.retryable, cls.rotates_key, cls.fallback_ok, cls.provider_fault)
    assert all(isinstance(flag, bool) for flag in flags)
    if not issubclass(cls, ProviderError):  # only a provider call is retried, rotated or handed on
        assert not any(flags)


def test_metric_labels_are_unique() -> None:
    """One label per class, as when the label was the class name: dashboards can tell them apart."""
    labels = [cls.metric_label for cls in ERRORS]
    duplicates = {label for label in labels if labels.count(label) > 1}
    assert not duplicates, f"shared metric labels: {duplicates}"


def test_the_docstring_draws_every_error() -> None:
    doc = bot.errors.__doc__ or ""
    missing = [cls.__name__ for cls in ERRORS if not re.search(rf"\b{cls.__name__}\b", doc)]
    assert not missing, f"not in the hierarchy drawn in bot/errors.py: {missing}"


#: Boolean facts, named in BEFORE when true.
FLAGS = ("retryable", "rotates_key", "fallback_ok", "provider_fault")
KEY_FAULT = "rotates_key fallback_ok provider_fault"
HOST_FAULT = "retryable fallback_ok provider_fault"
#: The facts as they were before they moved onto the classes: metric labels and outcomes feed
#: dashboards, exit codes feed scripts, titles are what users read. (The metric labels of errors that
#: are not a provider's are new: only provider errors are counted by label.)
BEFORE: dict[type[NanoBotError], tuple[str, str, str, int, str]] = {
    NanoBotError: ("⚠️ Something went wrong", "nanobot_error", "error", 3, ""),
    ConfigError: ("⚠️ Configuration error", "config_error", "error", 2, ""),
    InputError: ("⚠️ Bad input", "input_error", "bad_input", 2, ""),
    ImageTooLarge: ("📦 File too large", "image_too_large", "bad_input", 2, ""),
    ProviderError: ("⚠️ Provider error", "error", "error", 3, "fallback_ok"),
    SafetyBlocked: ("🚫 Blocked by safety filters", "safety_blocked", "safety_blocked", 3, ""),
    NoImageReturned: ("🖼️ No image returned", "no_image_returned", "no_image", 3, ""),
    RateLimited: ("⏳ Rate limited", "rate_limited", "rate_limited", 3, " ".join(FLAGS)),
    AuthFailed: ("🔧 Provider account problem", "auth_failed", "error", 3, KEY_FAULT),
    OutOfCredits: ("🔧 Provider account problem", "out_of_credits", "error", 3, KEY_FAULT),
    BadRequest: ("⚠️ Request not accepted", "bad_request", "bad_input", 2, ""),
    ProviderUnavailable: ("🛠️ Provider unavailable", "unavailable", "unavailable", 3, HOST_FAULT),
    CircuitOpen: ("🛠️ Provider unavailable", "circuit_open", "unavailable", 3, HOST_FAULT),
    ProviderTimeout: ("⌛ Timed out", "timeout", "timeout", 3, HOST_FAULT),
    DeliveryFailed: ("📮 Discord refused the image", "delivery_failed", "error", 3, ""),
    StorageUnavailable: ("⚠️ Database unavailable", "storage_unavailable", "error", 3, ""),
}


@pytest.mark.parametrize("cls", list(BEFORE), ids=lambda c: c.__name__)
def test_facts_are_unchanged(cls: type[NanoBotError]) -> None:
    flags = " ".join(name for name in FLAGS if getattr(cls, name))
    assert (str(cls.title), cls.metric_label, cls.outcome, cls.exit_code, flags) == BEFORE[cls]


def test_reply_texts_are_unchanged() -> None:
    assert RateLimited("slow down").reply_text() == "The image service is busy. Try again in a minute."
    assert RateLimited("x", retry_after=2.1).reply_text() == "The image service is busy. Try again in 3 s."
    assert RateLimited("x", retry_after=0.2).reply_text() == "The image service is busy. Try again in 1 s."
    blocked = Text("provider.safety.system", provider="p")
    assert SafetyBlocked(blocked, reason="SAFETY").reply_text() == (
        "Your request was blocked by p's safety system (SAFETY)"
    )
    image = Text("provider.safety.image", provider="p", reason="SAFETY")
    assert SafetyBlocked(image, reason="SAFETY").reply_text() == (
        "The image was blocked by p's safety filters (SAFETY)"
    )
    assert SafetyBlocked(blocked).reply_text() == "Your request was blocked by p's safety system"
    late = Text("provider.timeout.answer", provider="p", seconds="9")
    assert ProviderTimeout(late).reply_text() == (
        "p did not answer within 9 s. Try again, perhaps at a lower resolution."
    )
    assert OutOfCredits("HTTP 402 from p").reply_text() == (
        "The image service says this bot's account has run out of credits; whoever runs the "
        "bot needs to top it up or add another key. Nothing was charged."
    )
    assert AuthFailed("HTTP 401 from p").reply_text() == (
        "The image service refused this bot's account; whoever runs the bot needs to check "
        "its provider key. Nothing was charged."
    )
    assert Refused("⏳ Queue full", "wait").title == "⏳ Queue full"
    paused = Text("provider.paused", provider="p", seconds=30)
    assert CircuitOpen(paused).reply_text() == "p is temporarily unavailable; try again in 30 s"


# --- a detail in a service's own words comes after a sentence in the member's language --------------

#: The classes whose messages are always catalogue Texts: the user has something to act on.
WORDED = (InputError, Refused, StorageUnavailable, ConfigError)


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: c.__name__)
def test_a_plain_detail_is_introduced_in_the_members_language(cls: type[NanoBotError]) -> None:
    intro = cls.detail_intro
    if issubclass(cls, WORDED) or cls is NanoBotError:
        assert intro is None  # a plain message would reach the member in English, alone
        return
    assert intro is not None and catalogue().has(intro.key), f"{cls.__name__} has no detail_intro"
    for language in ("es", "pt-BR", "ja"):
        assert intro.render(language) != str(intro), f"{intro.key} is not translated for {language}"
    error = make(cls)
    assert error.message == "boom"  # the log and the command-line tool keep the detail alone
    said = error.reply_text("es-ES")
    if cls in (RateLimited, AuthFailed, OutOfCredits):
        assert "boom" not in said  # these say who can fix it; the provider's words stay in the log
    else:
        assert said.startswith(intro.render("es-ES") + " boom"), said


def test_the_intro_reads_well_before_a_detail() -> None:
    error = ProviderUnavailable("p answered with an HTML page instead of a result; try again later")
    assert error.reply_text() == (
        "The image service is not answering properly right now; nothing was charged. Details: "
        "p answered with an HTML page instead of a result; try again later"
    )
    assert error.reply_text("es-ES") == (
        "El servicio de imágenes no está respondiendo bien en este momento; no se cobró nada. "
        "Detalles: p answered with an HTML page instead of a result; try again later"
    )
    assert ProviderTimeout("p: HTTP 504").reply_text("ja") == (
        "画像サービスの応答に時間がかかりすぎました。料金は発生していません。詳細: p: HTTP 504。"
        "解像度を下げて、もう一度お試しください。"
    )


def test_a_worded_message_is_not_introduced() -> None:
    """A catalogue Text says everything itself, in the member's language, with no intro before it."""
    error = BadRequest(Text("provider.prompt.empty"))
    assert error.reply_text("es-ES") == "El prompt está vacío; describe la imagen que quieres"
    assert error.message == "The prompt is empty; describe the image you want"


# --- every place that acts on an error reads the facts ---------------------------------------------


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: c.__name__)
def test_metrics_read_the_facts(cls: type[NanoBotError]) -> None:
    error = make(cls)
    assert outcome_of(error) == cls.outcome
    if isinstance(error, ProviderError):
        assert error_label(error) == cls.metric_label


def test_outcomes_of_what_is_not_our_error() -> None:
    assert outcome_of(None) == "ok"
    assert outcome_of(asyncio.CancelledError()) == "cancelled"
    assert outcome_of(RuntimeError("bug")) == "error"


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: c.__name__)
def test_the_reply_reads_the_facts(cls: type[NanoBotError]) -> None:
    error = make(cls)
    assert error_text(error) == (error.title_text(), error.reply_text())
    assert error_text(error, "ja") == (error.title_text("ja"), error.reply_text("ja"))


def test_the_reply_to_an_unexpected_error() -> None:
    assert error_text(RuntimeError("secret detail")) == (
        "💥 Something went wrong",
        "An unexpected error happened; it has been logged. Please try again.",
    )


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: c.__name__)
def test_the_cli_exits_with_the_code(cls: type[NanoBotError], capsys: pytest.CaptureFixture[str]) -> None:
    assert _fail(make(cls)) == cls.exit_code
    err = capsys.readouterr().err
    blocked = "blocked by safety filters: " if issubclass(cls, SafetyBlocked) else ""
    assert err == f"error: {blocked}boom\n"


class Busy:
    """A host on 127.0.0.1 that answers every request with 503 and counts them."""

    def __init__(self) -> None:
        self.requests = 0
        self.url = ""

    async def handle(self, _: web.Request) -> web.Response:
        self.requests += 1
        return web.Response(status=503, body=b"{}", content_type="application/json")


@pytest.fixture
async def busy() -> AsyncIterator[Busy]:
    host = Busy()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", host.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host.url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    try:
        yield host
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("cls", PROVIDER_ERRORS, ids=lambda c: c.__name__)
async def test_http_retries_what_is_retryable(
    cls: type[ProviderError], busy: Busy, session: aiohttp.ClientSession
) -> None:
    """A retryable status is sent again only when the error it maps to is retryable."""
    http = HttpClient(session, RetryPolicy(attempts=2, base_delay=0.0, max_delay=0.0))
    with pytest.raises(cls):
        await http.request_json(
            "POST", busy.url, provider="p", mapper=lambda *_: make(cls), limits=Limits(), json_body={}
        )
    assert busy.requests == (2 if cls.retryable else 1)


@pytest.mark.parametrize("cls", PROVIDER_ERRORS, ids=lambda c: c.__name__)
async def test_the_key_ring_rotates_on_key_errors(cls: type[ProviderError]) -> None:
    ring = KeyRing("p", [SecretStr("first-key"), SecretStr("second-key")], ManualClock())
    used: list[str | None] = []

    async def call(key: str | None) -> str:
        used.append(key)
        if key == "first-key":
            raise make(cls)
        return "done"

    if cls.rotates_key:
        assert await ring.run(call) == "done"
        assert used == ["first-key", "second-key"] and ring.current == 1
    else:
        with pytest.raises(cls):
            await ring.run(call)
        assert used == ["first-key"] and ring.current == 0


@pytest.mark.parametrize("cls", PROVIDER_ERRORS, ids=lambda c: c.__name__)
async def test_the_breaker_counts_provider_faults(cls: type[ProviderError]) -> None:
    breaker = Breaker("p", threshold=1, cooldown=60.0, clock=ManualClock())

    async def call() -> None:
        raise make(cls)

    with pytest.raises(cls):
        await breaker.call(call)
    assert breaker.state == ("open" if cls.provider_fault else "closed")
