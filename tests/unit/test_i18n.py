"""Messages rendered in a language: plurals by CLDR's rules, numbers as each language writes them,
messages inside messages, and an unknown key that never breaks a reply."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from bot.billing.store import RECOVERED
from bot.errors import InputError
from bot.i18n import Bytes, Credits, Text, language_of, render, t
from bot.jobs.recovery import INTERRUPTED, LOST, SHUT_DOWN
from bot.jobs.service import CANCELLED_CHARGED
from bot.ui.autocomplete import search_option
from bot.ui.outcomes import outcome_words


@pytest.mark.parametrize(
    ("locale", "cents", "said"),
    [
        (None, 100, "1 credit"),
        (None, 150, "1.5 credits"),
        ("en-GB", 0, "0 credits"),
        ("es-ES", 100, "1 crédito"),
        ("es-419", 50, "0,5 créditos"),
        ("pt-BR", 250, "2,5 créditos"),
        ("pt-BR", 100, "1 crédito"),
        ("ja", 100, "1クレジット"),
        ("es-ES", None, "∞ créditos"),
    ],
)
def test_amounts_take_the_languages_plural_and_decimal_sign(
    locale: str | None, cents: int, said: str
) -> None:
    amount = Credits(cents)
    assert t(locale, "usage.credits", amount=amount, count=amount) == said


def test_numbers_are_written_as_the_language_writes_them() -> None:
    assert Credits(123456789).render("es-ES") == "1234567,89"  # exact, never 1.23457e+06
    assert Credits(123456789).render(None) == "1234567.89"
    assert Bytes(1_677_722).render("pt-BR") == "1,6 MB" and Bytes(1_677_722).render(None) == "1.6 MB"
    assert Bytes(10 * 1_048_576).render(None) == "10 MB" and Bytes(2048).render("ja") == "2 KB"
    assert t("es-ES", "result.time", seconds=12.5) == t("es-ES", "result.time", seconds=Decimal("12.5"))
    assert "12,5" in t("es-ES", "result.time", seconds=12.5) and "12.5" in t(
        None, "result.time", seconds=12.5
    )
    assert "3" in t("es-ES", "result.time", seconds=3)  # whole numbers (ids, counts) as they are


def test_a_message_inside_a_message_is_in_the_same_language() -> None:
    inner = Text("audit.reason.cancelled")
    assert t("es-ES", "audit.outcome.refunded", why=inner) == "reembolsado: cancelado"
    assert t("ja", "audit.outcome.refunded", why=inner) == "返金済み：キャンセル"
    assert str(Text("audit.outcome.refunded", why=inner)) == "refunded: cancelled"  # English for the log


def test_an_unknown_key_is_logged_and_shown_as_the_key(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="bot.i18n.text"):
        assert t("es-ES", "no.such.message") == "no.such.message"
    assert "no.such.message" in caplog.text


def test_discord_locales_map_to_the_catalogues_languages() -> None:
    assert [language_of(x) for x in ("es-ES", "es-419", "pt-BR", "ja", "en-US", "fr", None)] == [
        "es",
        "es",
        "pt_BR",
        "ja",
        "en",
        "en",
        "en",
    ]


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("on", True),
        ("OFF", False),
        ("activado", True),
        ("desativado", False),
        ("オン", True),
        (" オフ ", False),
    ],
)
def test_search_may_be_typed_in_any_language(typed: str, meant: bool) -> None:
    assert search_option(typed) is meant  # the words the choices show, typed rather than picked


def test_a_word_that_means_neither_is_refused_in_the_members_language() -> None:
    with pytest.raises(InputError) as refused:
        search_option("quizás")
    assert "activado" in refused.value.reply_text("es-ES")


@pytest.mark.parametrize(
    "outcome",
    [
        "ok",
        CANCELLED_CHARGED,
        INTERRUPTED,
        SHUT_DOWN,
        LOST,
        RECOVERED,
        "refunded: SafetyBlocked",
        "refunded: cancelled",
        "refunded: delivery failed",
        "refunded: ClientOSError",
        "ok (reserved 2.5)",
    ],
)
def test_every_audit_outcome_reads_in_the_admins_language(outcome: str) -> None:
    english, spanish = (render(outcome_words(outcome, "refunded"), x) for x in (None, "es-ES"))
    assert spanish != english
    assert not any(word in spanish for word in ("refunded", "never", "cancelled", "Error", "reserved"))


def test_a_message_missing_a_value_is_never_shown_with_its_braces(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="bot.i18n.text"):
        said = t("es-ES", "error.rate_limited.seconds")  # {seconds} not given
    assert "{" not in said and "does not fit" in caplog.text
