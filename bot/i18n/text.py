"""Messages as data: a key and its values, rendered in a language only where Discord is answered."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from bot.i18n.catalogue import SOURCE, catalogue, language_of, plural_category

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Text:
    """A message of the catalogue with its values; `str()` gives the English (logs, the CLI).

    A value may itself be a Text (rendered in the same language). A `count` value picks the key's
    plural variant (`<key>.one`, `<key>.other`, … by CLDR's rules) when the catalogue has one.
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


def render(words: Words, locale: str | None) -> str:
    """A Text in the locale's language; a plain string (data, not a message) as it is."""
    return words.render(locale) if isinstance(words, Text) else words


def t(locale: str | None, key: str, /, **params: Any) -> str:
    """The catalogue's message for a key in the language of a Discord locale, its values filled in."""
    language = language_of(locale)
    book = catalogue()
    if "count" in params and isinstance(params["count"], int):
        variant = f"{key}.{plural_category(language, params['count'])}"
        pattern = book.lookup(language, variant) or book.lookup(language, f"{key}.other")
    else:
        pattern = None
    pattern = pattern or book.lookup(language, key)
    if pattern is None:
        log.error("message %r is not in the catalogue", key)
        return key
    values = {name: _value(value, locale) for name, value in params.items()}
    try:
        return pattern.format(**values)
    except (KeyError, IndexError, ValueError):
        log.exception("message %r in %s does not fit its values", key, language)
        return book.lookup(SOURCE, key) or key


def _value(value: Any, locale: str | None) -> Any:
    """A value as the message shows it: a message in the same language, anything else as it is."""
    return value.render(locale) if isinstance(value, Text) else value
