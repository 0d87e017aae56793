"""Loading the message catalogue: the English template and one translation per language, per domain."""

from __future__ import annotations

import functools
import string
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from babel import Locale
from babel.messages.pofile import read_po

#: Where the catalogue's files are (shipped inside the package).
MESSAGES = Path(__file__).with_name("messages")
#: The languages there are translations for, besides English (folder names under MESSAGES).
LANGUAGES = ("es", "pt_BR", "ja")
#: The source language: the .pot files' msgid.
SOURCE = "en"


@dataclass(frozen=True)
class Catalogue:
    """Every message by language and key; English is the fallback for a key a language lacks."""

    messages: dict[str, dict[str, str]]

    def lookup(self, language: str, key: str) -> str | None:
        """The message in that language, else English, else None (an unknown key)."""
        found = self.messages.get(language, {}).get(key)
        return found if found else self.messages[SOURCE].get(key)

    def has(self, key: str) -> bool:
        """Whether the English template has this key."""
        return key in self.messages[SOURCE]


def read_domain(path: Path) -> dict[str, str]:
    """key → text of one .pot (its msgid) or .po (its msgstr, empty when untranslated) file."""
    with path.open("rb") as handle:
        entries = read_po(handle)
    source = path.suffix == ".pot"
    found: dict[str, str] = {}
    for message in entries:
        if not message.context:
            continue  # the header
        found[message.context] = str(message.id if source else message.string)
    return found


def load(root: Path = MESSAGES) -> Catalogue:
    """Read every domain of every language from disk."""
    messages: dict[str, dict[str, str]] = {SOURCE: {}}
    for template in sorted(root.glob("*.pot")):
        messages[SOURCE].update(read_domain(template))
    for language in LANGUAGES:
        merged: dict[str, str] = {}
        for po in sorted((root / language).glob("*.po")):
            merged.update(read_domain(po))
        messages[language] = merged
    return Catalogue(messages)


@functools.cache
def catalogue() -> Catalogue:
    """The shipped catalogue, read once per process (the app warms it in a thread at start)."""
    return load()


@functools.cache
def language_of(locale: str | None) -> str:
    """The catalogue language for a Discord locale ("es-ES", "es-419" → "es"; "pt-BR" → "pt_BR"),
    English for anything else."""
    if not locale:
        return SOURCE
    code = locale.replace("-", "_")
    if code in LANGUAGES:
        return code
    language = code.split("_")[0]
    for known in LANGUAGES:
        if known.split("_")[0] == language:
            return known
    return SOURCE


@functools.cache
def plural_category(language: str, count: int | Decimal) -> str:
    """CLDR's plural category of a count in a language ("one", "other", …): 1 is "one" in English,
    1.5 is not."""
    return str(Locale.parse(language).plural_form(-count if count < 0 else count))


def fields(text: str) -> set[str]:
    """The {placeholders} a message uses."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}
