"""Messages as data: a key and its values, rendered in a language only where Discord is answered."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from babel.numbers import format_decimal

from bot.i18n.catalogue import SOURCE, catalogue, language_of, plural_category

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Text:
    """A message of the catalogue with its values; `str()` gives the English (logs, the CLI).

    A value may itself be a Text (rendered in the same language); a fractional number (a float, a
    Decimal, `Credits`) is written as the language writes it ("0,5" in Spanish). A `count` value picks
    the key's plural variant (`<key>.one`, `<key>.other`, … by CLDR's rules: "1 crédito", "0,5
    créditos") when the catalogue has one.
    """

    key: str
    params: dict[str, Any] = field(default_factory=dict)

    def __init__(self, key: str, /, **params: Any) -> None:
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "params", params)

    def render(self, locale: str | None = None) -> str:
        """The message in the language of a Discord locale (English for None)."""
        return t(locale, self.key, **self.params)

    def __str__(self) -> str:
        return self.render(None)


#: What user-facing code passes around: a catalogue message, or words that are data (a prompt, a name).
Words = Text | str
#: The unlimited amount.
UNLIMITED = "∞"


@dataclass(frozen=True, slots=True)
class Credits:
    """An amount of credits as a message shows it (hundredths of a credit; None: unlimited)."""

    cents: int | None

    @property
    def amount(self) -> Decimal | None:
        """The amount in credits, exactly (1.75, not 1.7500000001)."""
        return None if self.cents is None else Decimal(self.cents) / 100

    def render(self, locale: str | None = None) -> str:
        """The amount as the locale's language writes it ("2.5", "2,5"; "∞" for unlimited)."""
        amount = self.amount
        return UNLIMITED if amount is None else number(amount, language_of(locale))

    def __str__(self) -> str:
        return self.render(None)


@dataclass(frozen=True, slots=True)
class Bytes:
    """A size as a message shows it: KB under a megabyte, else MB with one decimal (as Discord counts:
    1 MB = 1,048,576 bytes), the number written as the language writes it ("1,6 MB")."""

    count: int

    def render(self, locale: str | None = None) -> str:
        """The size in the locale's language."""
        if self.count < 1_048_576:
            return f"{-(-self.count // 1024)} KB"
        return f"{number(round(self.count / 1_048_576, 1), language_of(locale))} MB"

    def __str__(self) -> str:
        return self.render(None)


def number(value: float | Decimal, language: str) -> str:
    """A number as the language writes it, up to three decimals, without grouping (English as before:
    "1.5", "2500")."""
    return format_decimal(value, format="0.###", locale=language if language != SOURCE else "en")


def render(words: Words, locale: str | None) -> str:
    """A Text in the locale's language; a plain string (data, not a message) as it is."""
    return words.render(locale) if isinstance(words, Text) else words


def t(locale: str | None, key: str, /, **params: Any) -> str:
    """The catalogue's message for a key in the language of a Discord locale, its values filled in."""
    language = language_of(locale)
    book = catalogue()
    pattern = None
    if "count" in params:  # a count that is no number (an unlimited amount) takes the "other" form
        count = _countable(params["count"])
        category = "other" if count is None else plural_category(language, count)
        pattern = book.lookup(language, f"{key}.{category}") or book.lookup(language, f"{key}.other")
    pattern = pattern or book.lookup(language, key)
    if pattern is None:
        log.error("message %r is not in the catalogue", key)
        return key
    values = {name: _value(value, locale) for name, value in params.items()}
    try:
        return pattern.format(**values)
    except (KeyError, IndexError, ValueError):
        log.exception("message %r in %s does not fit its values", key, language)
        # The English words rather than a broken message; the key when even they do not fit.
        return t(None, key, **params) if language != SOURCE else key


def _countable(value: Any) -> int | Decimal | None:
    """A count's number (plural rules tell 1 from 1.5), or None for no count."""
    if isinstance(value, Credits):
        return value.amount
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    return Decimal(str(value)) if isinstance(value, float) else value


def _value(value: Any, locale: str | None) -> Any:
    """A value as the message shows it: a message or an amount in the same language, a fractional
    number as the language writes it, anything else (whole numbers, names, ids) as it is."""
    if isinstance(value, Text | Credits | Bytes):
        return value.render(locale)
    if isinstance(value, float | Decimal):
        return number(value, language_of(locale))
    return value
